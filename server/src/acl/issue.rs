//! Making secrets, and the commands that record them.
//!
//! The manager that takes a request generates the secret (or takes the operator's
//! chosen one), puts only its hash in the command, and returns the secret once to the
//! caller. Each function here answers both, so the routes cannot put a secret in a
//! command by mistake.

use super::secret::{check_chosen, generate, SecretHash, SecretKind};
use crate::state::acl::{AclCommand, NewToken};
use gantry_api::acl::TokenKind;

/// The longest token name.
pub const MAX_NAME_LEN: usize = 128;

/// A command and the secret(s) it hashes, to hand back once committed.
#[derive(Debug)]
pub struct Issued<S> {
    pub command: AclCommand,
    pub secrets: S,
}

/// The secrets of a bootstrap: the first management token's and the first join token.
#[derive(Debug)]
pub struct BootstrapSecrets {
    pub token: String,
    pub join_token: String,
}

/// The first management token (with the chosen secret, if any) and join token.
pub fn bootstrap(chosen: Option<String>, now_ms: u64) -> Result<Issued<BootstrapSecrets>, String> {
    let token =
        chosen_or_generated(chosen, SecretKind::Token).map_err(|e| format!("secret: {e}"))?;
    let join_token = generate(SecretKind::JoinToken);
    Ok(Issued {
        command: AclCommand::Bootstrap {
            token: new_token("bootstrap".into(), TokenKind::Management, &token, now_ms),
            join_token_hash: SecretHash::of(&join_token),
        },
        secrets: BootstrapSecrets { token, join_token },
    })
}

/// A new token of `kind`.
pub fn create_token(name: String, kind: TokenKind, now_ms: u64) -> Result<Issued<String>, String> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(format!("name: must be 1-{MAX_NAME_LEN} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name: must not contain control characters".into());
    }
    let secret = generate(SecretKind::Token);
    Ok(Issued {
        command: AclCommand::CreateToken {
            token: new_token(name, kind, &secret, now_ms),
        },
        secrets: secret,
    })
}

/// A new join token (the chosen one, if any).
pub fn rotate_join_token(chosen: Option<String>) -> Result<Issued<String>, String> {
    let join_token = chosen_or_generated(chosen, SecretKind::JoinToken)
        .map_err(|e| format!("join_token: {e}"))?;
    Ok(Issued {
        command: AclCommand::RotateJoinToken {
            join_token_hash: SecretHash::of(&join_token),
        },
        secrets: join_token,
    })
}

/// A new secret for the agent of `node_id`.
pub fn node_secret(node_id: &str) -> Issued<String> {
    let secret = generate(SecretKind::NodeSecret);
    Issued {
        command: AclCommand::SetNodeSecret {
            node_id: node_id.to_string(),
            secret_hash: SecretHash::of(&secret),
        },
        secrets: secret,
    }
}

fn new_token(name: String, kind: TokenKind, secret: &str, now_ms: u64) -> NewToken {
    NewToken {
        accessor_id: generate(SecretKind::Accessor),
        name,
        kind,
        secret_hash: SecretHash::of(secret),
        created_at_ms: now_ms,
    }
}

fn chosen_or_generated(chosen: Option<String>, kind: SecretKind) -> Result<String, String> {
    match chosen {
        Some(secret) => {
            check_chosen(&secret)?;
            Ok(secret)
        }
        None => Ok(generate(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::{encode_batch, Command};

    /// Every way a secret is handed out: the command that goes into the log carries its
    /// hash, never the secret (nor its random part).
    #[test]
    fn no_secret_enters_a_command() {
        let chosen = "operator-chosen-secret-1234".to_string();
        let boot = bootstrap(Some(chosen.clone()), 1).unwrap();
        let generated = bootstrap(None, 1).unwrap();
        let token = create_token("ci".into(), TokenKind::Write, 2).unwrap();
        let rotated = rotate_join_token(None).unwrap();
        let rotated_chosen = rotate_join_token(Some("join-token-chosen-5678".into())).unwrap();
        let node = node_secret("n1");

        let mut secrets = vec![
            boot.secrets.token.clone(),
            boot.secrets.join_token.clone(),
            generated.secrets.token.clone(),
            generated.secrets.join_token.clone(),
            token.secrets.clone(),
            rotated.secrets.clone(),
            rotated_chosen.secrets.clone(),
            node.secrets.clone(),
        ];
        assert_eq!(secrets[0], chosen);
        let commands: Vec<Command> = [
            boot.command,
            generated.command,
            token.command,
            rotated.command,
            rotated_chosen.command,
            node.command,
        ]
        .into_iter()
        .map(Command::Acl)
        .collect();
        let logged = String::from_utf8(encode_batch(&commands)).unwrap();
        let random_parts: Vec<String> = secrets
            .iter()
            .map(|s| s.rsplit('-').next().unwrap().to_string())
            .collect();
        secrets.extend(random_parts);
        for secret in &secrets {
            assert!(
                !logged.contains(secret.as_str()),
                "`{secret}` is in the command: {logged}"
            );
        }
        for secret in &secrets[..8] {
            assert!(logged.contains(SecretHash::of(secret).as_str()));
        }
    }

    #[test]
    fn chosen_secrets_and_names_are_checked() {
        assert!(bootstrap(Some("short".into()), 1)
            .unwrap_err()
            .starts_with("secret:"));
        assert!(rotate_join_token(Some("short".into()))
            .unwrap_err()
            .starts_with("join_token:"));
        assert!(create_token("  ".into(), TokenKind::Read, 1).is_err());
        assert!(create_token("x".repeat(129), TokenKind::Read, 1).is_err());
        assert!(create_token("a\nb".into(), TokenKind::Read, 1).is_err());
        let ok = create_token(" ci ".into(), TokenKind::Read, 1).unwrap();
        assert!(matches!(ok.command, AclCommand::CreateToken { ref token } if token.name == "ci"));
    }
}
