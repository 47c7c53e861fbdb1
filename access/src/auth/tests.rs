use super::*;
use base64::engine::general_purpose::STANDARD;

fn basic(user: &str, password: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let v = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    h.insert(header::AUTHORIZATION, v.parse().unwrap());
    h
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    h
}

const TOKEN: &str = "tok-0123456789abcdef";

fn setup() -> (tempfile::TempDir, AuthSettings) {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("store-101:{}\n", bcrypt::hash("pw-101", 4).unwrap()),
    )
    .unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN} store-9\n")).unwrap();
    let settings = AuthSettings {
        htpasswd_file: Some(htpasswd),
        users: vec![UserSettings {
            username: "gw".into(),
            password_hash: bcrypt::hash("pw-gw", 4).unwrap(),
        }],
        bearer_tokens_file: Some(tokens),
        tenants: [("store-101".to_string(), "store-101".to_string())].into(),
        realm: "r".into(),
    };
    (dir, settings)
}

#[tokio::test]
async fn users_and_tokens_get_in_and_everything_else_is_refused_by_reason() {
    let (_dir, s) = setup();
    let a = Arc::new(Authenticator::new(&s).unwrap());
    let me = a.check(&basic("store-101", "pw-101")).await.unwrap();
    assert_eq!(me.name, "store-101");
    assert_eq!(me.tenant.as_deref(), Some("store-101"));
    // Again, from what was remembered.
    assert_eq!(a.check(&basic("store-101", "pw-101")).await.unwrap(), me);
    let gw = a.check(&basic("gw", "pw-gw")).await.unwrap();
    assert_eq!(gw.tenant, None);
    let t = a.check(&bearer(TOKEN)).await.unwrap();
    assert_eq!(
        (t.name.as_str(), t.tenant.as_deref()),
        ("tokens:1", Some("store-9"))
    );

    let reason = |r: Result<Identity, Denied>| r.unwrap_err().reason;
    assert_eq!(
        reason(a.check(&HeaderMap::new()).await),
        DeniedReason::Missing
    );
    assert_eq!(
        reason(a.check(&basic("store-101", "nope")).await),
        DeniedReason::BadCredentials
    );
    assert_eq!(
        reason(a.check(&basic("nobody", "pw-101")).await),
        DeniedReason::BadCredentials
    );
    assert_eq!(
        reason(a.check(&bearer("tok-0123456789abcdeX")).await),
        DeniedReason::BadCredentials
    );
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, "Basic %%%".parse().unwrap());
    assert_eq!(reason(a.check(&h).await), DeniedReason::Malformed);
    h.insert(header::AUTHORIZATION, "Digest x".parse().unwrap());
    assert_eq!(reason(a.check(&h).await), DeniedReason::Malformed);
    // The messages never carry what was presented.
    for r in [
        a.check(&basic("store-101", "nope")).await,
        a.check(&bearer("tok-0123456789abcdeX")).await,
    ] {
        let m = r.unwrap_err().to_string();
        assert!(!m.contains("nope") && !m.contains("tok-"), "{m}");
    }
    assert_eq!(a.challenges().len(), 2);
    assert!(
        a.challenges()[0]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=\"r\"")
    );
}

#[tokio::test]
async fn a_rotated_password_or_token_takes_effect_without_a_restart() {
    let (dir, s) = setup();
    let a = Arc::new(Authenticator::new(&s).unwrap());
    assert!(a.check(&basic("store-101", "pw-101")).await.is_ok());
    std::fs::write(
        dir.path().join("htpasswd"),
        format!("store-101:{}\n", bcrypt::hash("pw-new", 4).unwrap()),
    )
    .unwrap();
    std::fs::write(dir.path().join("tokens"), "tok-NEWNEWNEWNEWNEWNEW\n").unwrap();
    a.htpasswd.as_ref().unwrap().reload_now();
    a.tokens.as_ref().unwrap().reload_now();
    assert!(
        a.check(&basic("store-101", "pw-101")).await.is_err(),
        "the old password was remembered"
    );
    assert!(a.check(&basic("store-101", "pw-new")).await.is_ok());
    assert!(a.check(&bearer(TOKEN)).await.is_err());
    assert!(a.check(&bearer("tok-NEWNEWNEWNEWNEWNEW")).await.is_ok());
}

#[test]
fn a_bound_tenant_is_set_kept_or_refused() {
    let me = Identity {
        name: "store-101".into(),
        tenant: Some("t1".into()),
    };
    let mut h = HeaderMap::new();
    me.bind_tenant(&mut h).unwrap();
    assert_eq!(h[TENANT_HEADER], "t1");
    me.bind_tenant(&mut h).unwrap();
    h.insert(TENANT_HEADER, "t2".parse().unwrap());
    assert_eq!(
        me.bind_tenant(&mut h).unwrap_err().reason,
        DeniedReason::TenantMismatch
    );
    h.insert(TENANT_HEADER, "t1|t2".parse().unwrap());
    assert!(me.bind_tenant(&mut h).is_err());
    let free = Identity {
        name: "gw".into(),
        tenant: None,
    };
    free.bind_tenant(&mut h).unwrap();
    assert_eq!(h[TENANT_HEADER], "t1|t2");
}

#[test]
fn settings_mistakes_name_the_key() {
    let e = Authenticator::new(&AuthSettings::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("auth: set htpasswd_file"), "{e}");
    let s = AuthSettings {
        users: vec![UserSettings {
            username: "u".into(),
            password_hash: "plain-password".into(),
        }],
        ..AuthSettings::default()
    };
    let e = Authenticator::new(&s).unwrap_err().to_string();
    assert!(e.starts_with("auth.users[0].password_hash: "), "{e}");
    assert!(!e.contains("plain-password"), "{e}");
    let s = AuthSettings {
        bearer_tokens_file: Some("/nonexistent/tokens".into()),
        ..AuthSettings::default()
    };
    let e = Authenticator::new(&s).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/tokens: "), "{e}");
}
