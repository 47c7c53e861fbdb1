//! Password hashes as htpasswd files and configs hold them, and checking a password against
//! one: bcrypt (`$2y$`, `$2b$`, `$2a$`: `htpasswd -B`, Apache, nginx, Traefik) and Argon2 (PHC
//! strings, `$argon2id$...`). Other htpasswd schemes (MD5 `$apr1$`, SHA-1 `{SHA}`, crypt) are
//! refused when the file is read: they are too cheap to guess.
//!
//! A bcrypt or Argon2 check costs tens of milliseconds by design, too much for every push of an
//! agent that sends several a second. A password that matched is remembered ([`Verified`]) as
//! a salted SHA-256 of user, password and hash, so the next request with it costs a hash, not a
//! bcrypt; a changed hash (a rotated password) no longer matches what was remembered.

use std::collections::HashSet;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// A password hash, checked as its scheme says.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    text: String,
    scheme: Scheme,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordHash({:?})", self.scheme)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Bcrypt,
    Argon2,
}

impl PasswordHash {
    /// Parses a hash; the error says which schemes are taken.
    pub fn parse(text: &str) -> Result<PasswordHash, String> {
        let text = text.trim();
        let scheme = if ["$2y$", "$2b$", "$2a$"].iter().any(|p| text.starts_with(p)) {
            text.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("not a valid bcrypt hash: {e}"))?;
            Scheme::Bcrypt
        } else if text.starts_with("$argon2") {
            argon2::PasswordHash::new(text).map_err(|e| format!("not a valid Argon2 hash: {e}"))?;
            Scheme::Argon2
        } else {
            return Err(
                "not a bcrypt or Argon2 hash (other schemes, and passwords as \
                        such, are not taken): make one with `htpasswd -nB user`"
                    .into(),
            );
        };
        Ok(PasswordHash {
            text: text.to_string(),
            scheme,
        })
    }

    /// Whether `password` is the one hashed (slow: bcrypt or Argon2).
    pub fn verify(&self, password: &str) -> bool {
        match self.scheme {
            Scheme::Bcrypt => bcrypt::verify(password, &self.text).unwrap_or(false),
            Scheme::Argon2 => {
                use argon2::PasswordVerifier as _;
                argon2::PasswordHash::new(&self.text).is_ok_and(|h| {
                    argon2::Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
            }
        }
    }

    /// The hash as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// How many verified passwords are remembered; past it the memory starts again empty.
const REMEMBERED: usize = 4096;

/// The passwords that matched their hash lately, as salted digests (never the password).
pub struct Verified {
    salt: [u8; 32],
    seen: Mutex<HashSet<[u8; 32]>>,
}

impl Default for Verified {
    fn default() -> Self {
        Verified {
            salt: rand::random(),
            seen: Mutex::new(HashSet::new()),
        }
    }
}

impl Verified {
    fn digest(&self, user: &str, password: &str, hash: &PasswordHash) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        for part in [user, password, hash.as_str()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    /// Whether this user's password matched this very hash before.
    pub fn known(&self, user: &str, password: &str, hash: &PasswordHash) -> bool {
        let d = self.digest(user, password, hash);
        self.seen.lock().contains(&d)
    }

    /// Checks the password (slow), remembering a match.
    pub fn verify(&self, user: &str, password: &str, hash: &PasswordHash) -> bool {
        if self.known(user, password, hash) {
            return true;
        }
        if !hash.verify(password) {
            return false;
        }
        let d = self.digest(user, password, hash);
        let mut seen = self.seen.lock();
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(d);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_and_argon2_hashes_check_their_passwords() {
        let b = PasswordHash::parse(&bcrypt::hash("pw-1", 4).unwrap()).unwrap();
        assert!(b.verify("pw-1"));
        assert!(!b.verify("pw-2"));
        // htpasswd -B writes $2y$.
        let y = b.as_str().replacen("$2b$", "$2y$", 1);
        assert!(PasswordHash::parse(&y).unwrap().verify("pw-1"));

        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let a = argon2::Argon2::default()
            .hash_password(b"pw-1", &salt)
            .unwrap()
            .to_string();
        let a = PasswordHash::parse(&a).unwrap();
        assert!(a.verify("pw-1"));
        assert!(!a.verify("pw-1 "));
    }

    #[test]
    fn weak_or_broken_hashes_are_refused_saying_what_is_taken() {
        for bad in [
            "$apr1$abc$def",
            "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            "plaintext",
            "$2y$10$short",
        ] {
            let e = PasswordHash::parse(bad).unwrap_err();
            assert!(e.contains("bcrypt"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_verified_password_is_remembered_only_for_its_hash() {
        let v = Verified::default();
        let h1 = PasswordHash::parse(&bcrypt::hash("pw", 4).unwrap()).unwrap();
        let h2 = PasswordHash::parse(&bcrypt::hash("pw", 4).unwrap()).unwrap();
        assert!(!v.known("u", "pw", &h1));
        assert!(v.verify("u", "pw", &h1));
        assert!(v.known("u", "pw", &h1));
        assert!(
            !v.known("u", "pw", &h2),
            "another hash (a rotation) checks again"
        );
        assert!(!v.known("v", "pw", &h1));
        assert!(!v.verify("u", "wrong", &h1));
        assert!(!v.known("u", "wrong", &h1));
    }
}
