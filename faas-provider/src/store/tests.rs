use time::macros::datetime;

use super::*;
use crate::types::FunctionDeployment;

fn record(ns: &str, name: &str, secrets: &[&str]) -> FunctionRecord {
    FunctionRecord {
        deployment: FunctionDeployment {
            service: name.into(),
            image: format!("example/{name}"),
            namespace: ns.into(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        replicas: 1,
        created_at: datetime!(2026-01-02 03:04:05 UTC),
    }
}

fn enabled(name: &str) -> FunctionNamespace {
    FunctionNamespace {
        name: name.into(),
        labels: StringMap::from([("openfaas".into(), "1".into())]),
        annotations: StringMap::new(),
    }
}

#[test]
fn everything_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_namespace(&enabled("team-a")).unwrap();
        store.create_secret("team-a", "tok", b"v").unwrap();
        store
            .create_function(&record("team-a", "fn1", &["tok"]))
            .unwrap();
        store.scale_function("team-a", "fn1", 3).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let names: Vec<_> = store
        .namespaces()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["openfaas-fn", "team-a"]);
    assert_eq!(store.secret_value("team-a", "tok").unwrap(), b"v");
    let f = store.function("team-a", "fn1").unwrap();
    assert_eq!(
        (f.replicas, f.created_at),
        (3, datetime!(2026-01-02 03:04:05 UTC))
    );
}

#[test]
fn a_garbage_database_file_is_an_open_error_not_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0xAB; 8192]).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::Open { .. } | StoreError::Corrupt(_)),
        "{err}"
    );
}

#[test]
fn an_undecodable_record_is_found_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(FUNCTIONS)
            .unwrap()
            .insert(("openfaas-fn", "bad"), &b"{not json"[..])
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt(ref m) if m.contains("bad.openfaas-fn")),
        "{err}"
    );
}

#[test]
fn a_state_dir_that_is_a_file_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    assert!(matches!(Store::open(&file), Err(StoreError::Open { .. })));
}

#[test]
fn refused_writes_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .create_function(&record("openfaas-fn", "fn1", &[]))
        .unwrap();
    let before = store.all_functions().unwrap();
    assert!(matches!(
        store.create_function(&record("openfaas-fn", "fn1", &[])),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.create_function(&record("openfaas-fn", "fn2", &["missing"])),
        Err(StoreError::UnknownSecret { .. })
    ));
    assert!(matches!(
        store.create_function(&record("nowhere", "fn3", &[])),
        Err(StoreError::UnknownNamespace(_))
    ));
    let mut changed = record("openfaas-fn", "fn1", &["missing"]).deployment;
    changed.image = "other".into();
    assert!(store.update_function(changed, Some(9)).is_err());
    assert_eq!(store.all_functions().unwrap(), before);
}

#[test]
fn update_keeps_created_at_and_replicas_unless_scale_min_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .create_function(&record("openfaas-fn", "fn1", &[]))
        .unwrap();
    store.scale_function("openfaas-fn", "fn1", 4).unwrap();
    let mut d = record("openfaas-fn", "fn1", &[]).deployment;
    d.image = "new".into();
    let r = store.update_function(d.clone(), None).unwrap();
    assert_eq!((r.replicas, r.deployment.image.as_str()), (4, "new"));
    assert_eq!(store.update_function(d, Some(2)).unwrap().replicas, 2);
    let missing = record("openfaas-fn", "ghost", &[]).deployment;
    assert!(matches!(
        store.update_function(missing, None),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn namespaces_cannot_be_deleted_while_used_and_the_default_never() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(
        store.delete_namespace("openfaas-fn"),
        Err(StoreError::DefaultNamespace(_))
    ));
    store.create_namespace(&enabled("a")).unwrap();
    assert!(matches!(
        store.create_namespace(&enabled("a")),
        Err(StoreError::AlreadyExists(_))
    ));
    store.create_secret("a", "s", b"").unwrap();
    assert!(matches!(
        store.delete_namespace("a"),
        Err(StoreError::NamespaceNotEmpty { secrets: 1, .. })
    ));
    store.delete_secret("a", "s").unwrap();
    store.delete_namespace("a").unwrap();
    assert!(matches!(
        store.delete_namespace("a"),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn secrets_list_by_namespace_and_refuse_duplicates_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_namespace(&enabled("b")).unwrap();
    store.create_secret("openfaas-fn", "x", b"1").unwrap();
    store.create_secret("openfaas-fn", "y", b"2").unwrap();
    store.create_secret("b", "z", b"3").unwrap();
    assert_eq!(store.secrets("openfaas-fn").unwrap(), ["x", "y"]);
    assert_eq!(store.secrets("b").unwrap(), ["z"]);
    assert!(matches!(
        store.create_secret("b", "z", b""),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.update_secret("b", "nope", b""),
        Err(StoreError::NotFound(_))
    ));
    store.update_secret("b", "z", b"4").unwrap();
    assert_eq!(store.secret_value("b", "z").unwrap(), b"4");
    assert!(matches!(
        store.secrets("nope"),
        Err(StoreError::UnknownNamespace(_))
    ));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_while_the_first_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    assert!(Store::open(dir.path()).is_err());
}

#[cfg(unix)]
#[test]
fn the_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_cached_function_read_sees_every_committed_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .create_function(&record("openfaas-fn", "fn1", &[]))
        .unwrap();
    // Read twice: the second answer comes from the cache and must equal the first.
    let first = store.function("openfaas-fn", "fn1").unwrap();
    assert_eq!(store.function("openfaas-fn", "fn1").unwrap(), first);
    store.scale_function("openfaas-fn", "fn1", 3).unwrap();
    assert_eq!(store.function("openfaas-fn", "fn1").unwrap().replicas, 3);
    let mut d = first.deployment.clone();
    d.image = "example/fn1:2".into();
    store.update_function(d, None).unwrap();
    let updated = store.function("openfaas-fn", "fn1").unwrap();
    assert_eq!(updated.deployment.image, "example/fn1:2");
    store.delete_function("openfaas-fn", "fn1").unwrap();
    assert!(matches!(
        store.function("openfaas-fn", "fn1"),
        Err(StoreError::NotFound(_))
    ));
    // A refused write commits nothing, and the cache keeps answering as the database.
    store
        .create_function(&record("openfaas-fn", "fn2", &[]))
        .unwrap();
    let cached = store.function("openfaas-fn", "fn2").unwrap();
    assert!(
        store
            .create_function(&record("openfaas-fn", "fn2", &[]))
            .is_err()
    );
    assert_eq!(store.function("openfaas-fn", "fn2").unwrap(), cached);
}
