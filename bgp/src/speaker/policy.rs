//! Typed policies from the configuration's untyped `policy` tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::SpeakerConfig;
use crate::policy::{Policy, PolicyConfig};
use crate::speaker::SpeakerError;

/// Compile every `[[policy]]` of the configuration (name -> policy). Peers naming the same
/// policy get the same `Arc`, so they can share an update group.
pub fn compile_policies(
    config: &SpeakerConfig,
) -> Result<BTreeMap<String, Arc<Policy>>, SpeakerError> {
    let mut out = BTreeMap::new();
    for (name, value) in &config.policy {
        let pc: PolicyConfig =
            value
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| SpeakerError::Policy {
                    field: format!("policy.{name}"),
                    message: format!(
                        "{}, see the policy reference in reflector.toml",
                        e.message()
                    ),
                })?;
        let compiled = pc.compile().map_err(|e| SpeakerError::Policy {
            field: format!("policy.{name}.{}", e.field),
            message: e.message.clone(),
        })?;
        out.insert(name.clone(), Arc::new(compiled));
    }
    Ok(out)
}

/// The policy a peer's list of names resolves to. One name: that policy. Several names are
/// not supported yet (the RIB applies one policy per direction).
pub fn peer_policy(
    policies: &BTreeMap<String, Arc<Policy>>,
    names: &[String],
    field: &str,
) -> Result<Option<Arc<Policy>>, SpeakerError> {
    match names {
        [] => Ok(None),
        [one] => policies
            .get(one)
            .cloned()
            .map(Some)
            .ok_or_else(|| SpeakerError::Policy {
                field: field.to_owned(),
                message: format!("policy {one:?} does not exist, define it under [[policy]]"),
            }),
        _ => Err(SpeakerError::Policy {
            field: field.to_owned(),
            message: "only one policy per direction is supported, merge the rules into one \
                      policy"
                .to_owned(),
        }),
    }
}

/// Everything the speaker checks beyond [`SpeakerConfig`] validation: policies compile and
/// every peer's policy lists resolve.
pub fn validate(config: &SpeakerConfig) -> Result<(), SpeakerError> {
    let policies = compile_policies(config)?;
    for (i, n) in config.neighbors.iter().enumerate() {
        peer_policy(
            &policies,
            &n.options.import_policy,
            &format!("neighbor[{i}].import_policy"),
        )?;
        peer_policy(
            &policies,
            &n.options.export_policy,
            &format!("neighbor[{i}].export_policy"),
        )?;
    }
    for (name, t) in &config.templates {
        peer_policy(
            &policies,
            &t.import_policy,
            &format!("template.{name}.import_policy"),
        )?;
        peer_policy(
            &policies,
            &t.export_policy,
            &format!("template.{name}.export_policy"),
        )?;
    }
    Ok(())
}
