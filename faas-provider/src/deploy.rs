//! Validation of a `FunctionDeployment` into a deployment Locus accepts (decode →
//! **validate** → store): names, required fields, namespace precedence, quantities, the
//! `com.openfaas.scale.min` label and the function's kind ([`models::classify`]).

use crate::error::ProviderError;
use crate::models::{self, FunctionKind};
use crate::names::{self, NameKind};
use crate::quantity;
use crate::types::{FunctionDeployment, FunctionResources};

/// Label that sets the replica count on deploy and update.
pub const SCALE_MIN_LABEL: &str = "com.openfaas.scale.min";

/// Replicas of a new function without `com.openfaas.scale.min` (faas-netes's default).
pub const DEFAULT_REPLICAS: u64 = 1;

/// A deployment that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDeployment {
    /// The deployment as it will be stored: `namespace` resolved, empty resource blocks
    /// dropped, everything else exactly as received.
    pub deployment: FunctionDeployment,
    /// What kind of function it is.
    pub kind: FunctionKind,
    /// The `com.openfaas.scale.min` label, when present.
    pub scale_min: Option<u64>,
}

/// Checks `deployment`; `query_namespace` is the `?namespace=` of the request.
pub fn validate(
    mut deployment: FunctionDeployment,
    query_namespace: Option<&str>,
) -> Result<ValidDeployment, ProviderError> {
    if deployment.service.is_empty() {
        return Err(ProviderError::BadRequest(
            "service (the function name) is required".into(),
        ));
    }
    names::validate(NameKind::Function, &deployment.service)?;
    if deployment.image.trim().is_empty() {
        return Err(ProviderError::BadRequest("image is required".into()));
    }
    deployment.namespace = names::resolve_namespace(&deployment.namespace, query_namespace);
    names::validate(NameKind::Namespace, &deployment.namespace)?;
    for secret in &deployment.secrets {
        names::validate(NameKind::Secret, secret)?;
    }
    deployment.limits = check_resources("limits", deployment.limits.take())?;
    deployment.requests = check_resources("requests", deployment.requests.take())?;
    let scale_min = scale_min(&deployment)?;
    let kind = models::classify(&deployment)?;
    Ok(ValidDeployment {
        deployment,
        kind,
        scale_min,
    })
}

/// Every quantity must parse; a block with none set is dropped (echoed as absent).
fn check_resources(
    which: &str,
    resources: Option<FunctionResources>,
) -> Result<Option<FunctionResources>, ProviderError> {
    let Some(resources) = resources.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    for (field, value) in resources.fields() {
        if !value.is_empty() {
            quantity::parse(value)
                .map_err(|why| ProviderError::BadRequest(format!("{which}.{field}: {why}")))?;
        }
    }
    Ok(Some(resources))
}

fn scale_min(deployment: &FunctionDeployment) -> Result<Option<u64>, ProviderError> {
    let Some(text) = deployment
        .labels
        .as_ref()
        .and_then(|l| l.get(SCALE_MIN_LABEL))
    else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(ProviderError::BadRequest(format!(
            "label {SCALE_MIN_LABEL}={text:?} must be a positive integer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StringMap;

    fn model_fn() -> FunctionDeployment {
        FunctionDeployment {
            service: "fn1".into(),
            image: "example/fn1:latest".into(),
            annotations: Some(StringMap::from([
                (models::MODEL.into(), "mlp".into()),
                (models::WEIGHTS.into(), "zoo://mlp?seed=1".into()),
            ])),
            ..Default::default()
        }
    }

    #[test]
    fn namespace_resolves_and_empty_resource_blocks_are_dropped() {
        let mut d = model_fn();
        d.requests = Some(FunctionResources::default());
        let v = validate(d, Some("team-a")).unwrap();
        assert_eq!(v.deployment.namespace, "team-a");
        assert_eq!(v.deployment.requests, None);
        assert_eq!(v.scale_min, None);
    }

    #[test]
    fn scale_min_label_is_read_and_a_bad_one_refused() {
        let mut d = model_fn();
        d.labels = Some(StringMap::from([(SCALE_MIN_LABEL.into(), "2".into())]));
        assert_eq!(validate(d.clone(), None).unwrap().scale_min, Some(2));
        d.labels = Some(StringMap::from([(SCALE_MIN_LABEL.into(), "many".into())]));
        assert!(
            validate(d, None)
                .unwrap_err()
                .to_string()
                .contains(SCALE_MIN_LABEL)
        );
    }

    #[test]
    fn missing_fields_and_bad_quantities_are_refused_by_name() {
        let mut d = model_fn();
        d.image = String::new();
        assert!(validate(d, None).unwrap_err().to_string().contains("image"));
        let mut d = model_fn();
        d.service = String::new();
        assert!(
            validate(d, None)
                .unwrap_err()
                .to_string()
                .contains("service")
        );
        let mut d = model_fn();
        d.limits = Some(FunctionResources {
            memory: "lots".into(),
            ..Default::default()
        });
        assert!(
            validate(d, None)
                .unwrap_err()
                .to_string()
                .contains("limits.memory")
        );
    }
}
