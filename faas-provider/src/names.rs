//! Names of functions, secrets and namespaces: what is acceptable, and how a
//! `name.namespace` path parameter and the body/query/default precedence resolve.

use crate::error::ProviderError;

/// The namespace every function lives in unless told otherwise; it always exists.
pub const DEFAULT_NAMESPACE: &str = "openfaas-fn";

/// What a name names, for error messages.
#[derive(Debug, Clone, Copy)]
pub enum NameKind {
    /// A function (`service`, `functionName`, `serviceName`, path parameter).
    Function,
    /// A secret.
    Secret,
    /// A namespace.
    Namespace,
}

impl NameKind {
    fn noun(self) -> &'static str {
        match self {
            NameKind::Function => "function",
            NameKind::Secret => "secret",
            NameKind::Namespace => "namespace",
        }
    }
}

/// Checks a name against the contract's `[-a-zA-Z_0-9.]+`, refusing `..` and `/`.
///
/// Functions and namespaces may not contain `.` at all: a dot separates name and namespace
/// in `/function/name.ns`, so a dotted name could never be invoked unambiguously.
pub fn validate(kind: NameKind, name: &str) -> Result<(), ProviderError> {
    let noun = kind.noun();
    if name.is_empty() {
        return Err(ProviderError::BadRequest(format!(
            "{noun} name is required"
        )));
    }
    if name.contains("..") || name.contains('/') {
        return Err(ProviderError::BadRequest(format!(
            "{noun} name {name:?} must not contain '/' or '..'"
        )));
    }
    let dot_allowed = matches!(kind, NameKind::Secret);
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (dot_allowed && c == '.'));
    if !ok {
        let pattern = if dot_allowed {
            "[-a-zA-Z_0-9.]+"
        } else {
            "[-a-zA-Z_0-9]+"
        };
        return Err(ProviderError::BadRequest(format!(
            "{noun} name {name:?} must match {pattern}"
        )));
    }
    if name.len() > 253 {
        return Err(ProviderError::BadRequest(format!(
            "{noun} name must be at most 253 characters"
        )));
    }
    Ok(())
}

/// Picks the namespace by the contract's precedence: body, then query, then the default.
/// An empty string counts as "not given".
pub fn resolve_namespace(body: &str, query: Option<&str>) -> String {
    [Some(body), query]
        .into_iter()
        .flatten()
        .find(|ns| !ns.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_string()
}

/// Splits a path parameter `name` or `name.ns` at its last dot.
/// Returns the name and the namespace suffix, if any.
pub fn split_name(param: &str) -> (&str, Option<&str>) {
    match param.rsplit_once('.') {
        Some((name, ns)) => (name, Some(ns)),
        None => (param, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass_and_each_bad_form_is_refused() {
        assert!(validate(NameKind::Function, "fn-1_a").is_ok());
        assert!(validate(NameKind::Secret, "hf.token").is_ok());
        for bad in ["", "a/b", "..", "a..b", "a b", "ünï", "fn.ns"] {
            assert!(
                validate(NameKind::Function, bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(validate(NameKind::Secret, "../etc").is_err());
        assert!(validate(NameKind::Namespace, &"a".repeat(254)).is_err());
    }

    #[test]
    fn namespace_comes_from_body_then_query_then_default() {
        assert_eq!(resolve_namespace("b", Some("q")), "b");
        assert_eq!(resolve_namespace("", Some("q")), "q");
        assert_eq!(resolve_namespace("", Some("")), DEFAULT_NAMESPACE);
        assert_eq!(resolve_namespace("", None), DEFAULT_NAMESPACE);
    }

    #[test]
    fn a_path_parameter_splits_at_its_last_dot() {
        assert_eq!(split_name("fn1"), ("fn1", None));
        assert_eq!(split_name("fn1.openfaas-fn"), ("fn1", Some("openfaas-fn")));
        assert_eq!(split_name("a.b.c"), ("a.b", Some("c")));
        assert_eq!(split_name(".openfaas-fn"), ("", Some("openfaas-fn")));
    }
}
