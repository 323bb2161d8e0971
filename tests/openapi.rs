//! `openapi.yaml` (repository root) held to the code: the documented operations are the
//! routed ones, the answers have the documented shape, the session and CSRF
//! requirements are where the spec says, and the error codes are the gateway's.
//!
//! Black box: a real gateway, requests over HTTP. The router's `match` cannot be read
//! from here, so "every route is documented" is pinned from two sides: paths next to the
//! documented ones answer 404 "接口不存在", and on every documented path each method the
//! spec does not list answers 405.

use crate::harness::fx::*;
use crate::harness::{repo, Browser, Gateway, GatewayOptions, Resp};
use serde_json::Value;
use std::collections::BTreeSet;

/// Methods tried on every documented path.
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];

/// Paths (below `/api/v1`) that must not be routed: neighbours of real routes, trailing
/// slashes, parents, children, and operator endpoints that live on the admin listener.
/// (`/realname/` and `/realname/a/b` are not here: the router sends every path under
/// `/realname/` to the status handler, which answers 404 NOT_FOUND with its own message.)
const NOT_ROUTED: &[&str] = &[
    "/",
    "/nope",
    "/captcha/",
    "/Captcha",
    "/login",
    "/login/officer/",
    "/login/officer/password",
    "/login/ca/",
    "/login/ca/challenge/x",
    "/login/ca/x",
    "/session/x",
    "/logout/",
    "/realname",
    "/register",
    "/register/enterprise-user",
    "/register/enterprise-user/authorizers/x",
    "/recovery/person",
    "/recovery/enterprise/start/x",
    "/modules/wybs",
    "/tax-authorities/15301020000",
    "/enterprise",
    "/enterprise/users/",
    "/enterprise/users/dummy",
    "/enterprise/users/dummy/grants/x",
    "/enterprise/users/a/b/grants",
    "/enterprise/candidates/x",
    "/api/v1/captcha",
    "/healthz",
    "/admin/policies",
];

/// Filler for path parameters.
const DUMMY: &str = "dummy";

fn spec() -> Value {
    let path = repo().join("openapi.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("openapi.yaml does not parse: {e}"))
}

/// `servers[0].url`, the prefix of every documented path.
fn server(spec: &Value) -> String {
    spec["servers"][0]["url"]
        .as_str()
        .expect("servers[0].url")
        .to_string()
}

/// Every documented (METHOD, path template), in the spec's order.
fn operations(spec: &Value) -> Vec<(String, String)> {
    let paths = spec["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        for (method, _) in item.as_object().expect("path item") {
            if matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "patch" | "head" | "options" | "trace"
            ) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> &'a Value {
    spec["paths"][path]
        .get(method.to_lowercase())
        .unwrap_or_else(|| panic!("{method} {path} is not in openapi.yaml"))
}

/// `/enterprise/users/{person_id}/grants` → `/api/v1/enterprise/users/dummy/grants`.
fn concrete(spec: &Value, template: &str) -> String {
    let filled: Vec<String> = template
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                DUMMY.to_string()
            } else {
                seg.to_string()
            }
        })
        .collect();
    format!("{}{}", server(spec), filled.join("/"))
}

/// Follows local `$ref`s.
fn resolve<'a>(spec: &'a Value, mut v: &'a Value) -> &'a Value {
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local $ref {r}"));
        v = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    v
}

fn names(v: Option<&Value>) -> BTreeSet<String> {
    match v {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Checks `value` against `schema`: an object has no property the schema does not list
/// and every required one; arrays, strings (with enums), integers and booleans are what
/// they claim. Collects every mismatch with its location.
fn check(spec: &Value, schema: &Value, value: &Value, at: &str, errs: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(obj) = value.as_object() else {
                errs.push(format!("{at}: expected an object, got {value}"));
                return;
            };
            let documented = names(schema.get("properties"));
            let required = names(schema.get("required"));
            let got: BTreeSet<String> = obj.keys().cloned().collect();
            let extra: Vec<_> = got.difference(&documented).collect();
            if !extra.is_empty() {
                errs.push(format!(
                    "{at}: undocumented properties {extra:?} (the spec lists {documented:?})"
                ));
            }
            let missing: Vec<_> = required.difference(&got).collect();
            if !missing.is_empty() {
                errs.push(format!("{at}: required properties {missing:?} missing"));
            }
            for (k, v) in obj {
                if let Some(s) = schema.get("properties").and_then(|p| p.get(k)) {
                    check(spec, s, v, &format!("{at}.{k}"), errs);
                }
            }
        }
        Some("array") => {
            let Some(items) = value.as_array() else {
                errs.push(format!("{at}: expected an array, got {value}"));
                return;
            };
            for (i, item) in items.iter().enumerate() {
                check(spec, &schema["items"], item, &format!("{at}[{i}]"), errs);
            }
        }
        Some("string") => {
            if !value.is_string() {
                errs.push(format!("{at}: expected a string, got {value}"));
            } else if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
                if !allowed.contains(value) {
                    errs.push(format!("{at}: {value} is not one of {allowed:?}"));
                }
            }
        }
        Some("integer") if !(value.is_u64() || value.is_i64()) => {
            errs.push(format!("{at}: expected an integer, got {value}"));
        }
        Some("boolean") if !value.is_boolean() => {
            errs.push(format!("{at}: expected a boolean, got {value}"));
        }
        Some("integer" | "boolean") => {}
        other => errs.push(format!(
            "{at}: schema type {other:?} not handled by this test"
        )),
    }
}

/// Asserts that `resp` is one of the answers the spec documents for `method path`: its
/// status is listed, and its body matches that response's schema (or is empty when the
/// response has none, e.g. 204).
#[track_caller]
fn assert_documented(spec: &Value, method: &str, path: &str, resp: &Resp) {
    let op = operation(spec, method, path);
    let status = resp.status.to_string();
    let documented = names(op.get("responses"));
    assert!(
        documented.contains(&status),
        "{method} {path} answered {status}, the spec lists {documented:?}: {}",
        String::from_utf8_lossy(&resp.body)
    );
    let response = resolve(spec, &op["responses"][&status]);
    match response.pointer("/content/application~1json/schema") {
        Some(schema) => {
            let mut errs = Vec::new();
            check(spec, schema, &resp.json(), "$", &mut errs);
            errs.truncate(20);
            assert!(
                errs.is_empty(),
                "{method} {path} {status} differs from openapi.yaml:\n  {}\nbody: {}",
                errs.join("\n  "),
                String::from_utf8_lossy(&resp.body)
            );
        }
        None => assert!(
            resp.body.is_empty(),
            "{method} {path} {status}: the spec documents no body, got {}",
            String::from_utf8_lossy(&resp.body)
        ),
    }
}

fn needs_session(op: &Value) -> bool {
    op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|req| req.get("session").is_some()))
}

fn needs_csrf(spec: &Value, op: &Value) -> bool {
    op["parameters"].as_array().is_some_and(|ps| {
        ps.iter().any(|p| {
            let p = resolve(spec, p);
            p["in"] == "header" && p["name"] == "X-CSRF-Token"
        })
    })
}

/// One request as a test client sends it: body `{}` except for GET.
async fn call(b: &Browser, method: &str, url: &str) -> Resp {
    let body = (method != "GET").then_some("{}");
    b.send(method, url, &[], body).await
}

/// Every node of a YAML/JSON tree with its location.
fn walk<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            out.push((at.clone(), v));
            for (k, c) in m {
                walk(c, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                walk(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every node of a schema with its location, `$ref`s followed (request bodies are not
/// recursive; `depth` guards against a schema that would be).
fn walk_resolved<'a>(
    spec: &'a Value,
    v: &'a Value,
    at: String,
    depth: usize,
    out: &mut Vec<(String, &'a Value)>,
) {
    assert!(depth < 32, "{at}: schema nested too deep (recursive?)");
    let v = resolve(spec, v);
    match v {
        Value::Object(m) => {
            out.push((at.clone(), v));
            for (k, c) in m {
                walk_resolved(spec, c, format!("{at}/{k}"), depth + 1, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                walk_resolved(spec, c, format!("{at}/{i}"), depth + 1, out);
            }
        }
        _ => {}
    }
}

/// The schema a request body property must use, by the property's name: the identifiers
/// whose patterns mirror `gateway/src/identity/`.
const IDENTIFIER_FIELDS: &[(&str, &str)] = &[
    ("account", "#/components/schemas/UsccOrTin"),
    ("uscc", "#/components/schemas/UsccOrTin"),
    ("phone", "#/components/schemas/Phone"),
    ("id_number", "#/components/schemas/IdNumber"),
    ("name", "#/components/schemas/PersonName"),
];

/// `InvalidInput` → `INVALID_INPUT`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[test]
fn openapi_yaml_is_consistent() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.0.3");
    assert_eq!(server(&spec), "/api/v1");

    // Every $ref resolves; every object schema is closed.
    let mut nodes = Vec::new();
    walk(&spec, String::new(), &mut nodes);
    for (at, node) in &nodes {
        if node.get("$ref").is_some() {
            resolve(&spec, node);
        }
        if node.get("type") == Some(&Value::from("object")) {
            assert_eq!(
                node.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{at}: object schema without additionalProperties: false"
            );
        }
    }

    // Request bodies: every string is a bounded `Text<N>`.
    for (method, path) in operations(&spec) {
        let op = operation(&spec, &method, &path);
        let Some(body) = op.get("requestBody") else {
            continue;
        };
        let schema = resolve(
            &spec,
            &resolve(&spec, body)["content"]["application/json"]["schema"],
        );
        let mut inner = Vec::new();
        walk_resolved(
            &spec,
            schema,
            format!("{method} {path} body"),
            0,
            &mut inner,
        );
        for (at, node) in inner {
            if node.get("type") == Some(&Value::from("string")) && node.get("enum").is_none() {
                assert!(
                    node.get("maxLength").is_some(),
                    "{at}: string without maxLength"
                );
                // Control characters are refused in every string (wire.rs `Text`): each
                // string states what it accepts as a whole-value pattern.
                let pattern = node["pattern"].as_str().unwrap_or_default();
                assert!(
                    pattern.starts_with('^') && pattern.ends_with('$'),
                    "{at}: request string without an anchored pattern"
                );
            }
        }
        // Identifier fields use the identifier schemas.
        if let Some(props) = schema["properties"].as_object() {
            for (field, expected) in IDENTIFIER_FIELDS {
                if let Some(prop) = props.get(*field) {
                    assert_eq!(
                        prop["$ref"].as_str(),
                        Some(*expected),
                        "{method} {path}: `{field}` must use {expected}"
                    );
                }
            }
        }
        // Every operation that checks the CSRF token needs a session.
        if needs_csrf(&spec, op) {
            assert!(needs_session(op), "{method} {path}: CSRF without session");
        }
    }

    // What every operation can answer: 400 (a request line, `Host` or body framing that
    // HTTP/1.1 refuses, before routing), 413 (the body is read before routing), 500; 503
    // wherever the store is read, which is everywhere but the catalog. 400 also wherever
    // a path parameter can make the path malformed.
    for (method, path) in operations(&spec) {
        let documented = names(operation(&spec, &method, &path).get("responses"));
        let mut required = vec!["400", "413", "500"];
        if path != "/modules" {
            required.push("503");
        }
        for status in required {
            assert!(
                documented.contains(status),
                "{method} {path} does not document {status} (it lists {documented:?})"
            );
        }
    }

    // The session cookie as a security scheme.
    let scheme = &spec["components"]["securitySchemes"]["session"];
    assert_eq!(scheme["type"], "apiKey");
    assert_eq!(scheme["in"], "cookie");
    assert_eq!(scheme["name"], "taxgate_session");

    // The error codes are exactly the variants of `error::Code`.
    let source = std::fs::read_to_string(repo().join("gateway/src/error.rs")).unwrap();
    let body = source
        .split("pub enum Code {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("enum Code in gateway/src/error.rs");
    let variants: String = body
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    let in_code: BTreeSet<String> = variants
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(screaming_snake)
        .collect();
    let in_spec = names(spec["components"]["schemas"]["ErrorCode"].get("enum"));
    assert_eq!(in_spec, in_code, "ErrorCode enum vs error::Code");
}

#[tokio::test]
async fn openapi_every_documented_operation_is_routed() {
    let spec = spec();
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    for (method, path) in operations(&spec) {
        let op = operation(&spec, &method, &path);
        let r = call(&b, &method, &concrete(&spec, &path)).await;
        let label = format!("{method} {path}");
        assert_ne!(r.status, 405, "{label} is not routed: 405");
        if r.status == 404 {
            assert_ne!(
                r.json()["error"]["message"],
                "接口不存在",
                "{label} is not routed"
            );
        }
        // Whatever `{}` earns, it is an answer the spec documents.
        assert_documented(&spec, &method, &path, &r);
        // Without a cookie: UNAUTHENTICATED exactly where the spec requires a session.
        let unauthenticated = r.status == 401 && r.code() == "UNAUTHENTICATED";
        assert_eq!(
            unauthenticated,
            needs_session(op),
            "{label}: security in openapi.yaml vs the answer without a session ({})",
            String::from_utf8_lossy(&r.body)
        );
    }
}

#[tokio::test]
async fn openapi_documents_every_route_and_method() {
    let spec = spec();
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let prefix = server(&spec);
    let documented: BTreeSet<String> = names(spec.get("paths"));

    for path in NOT_ROUTED {
        assert!(!documented.contains(*path), "{path} is documented");
        for method in METHODS {
            let r = call(&b, method, &format!("{prefix}{path}")).await;
            let error = &r.json()["error"];
            assert_eq!(
                (r.status, error["code"].as_str(), error["message"].as_str()),
                (404, Some("NOT_FOUND"), Some("接口不存在")),
                "{method} {path} must not be routed"
            );
            assert_documented_error(&spec, &r);
        }
    }

    // On each documented path, the methods the spec does not list are refused with 405:
    // the documented method set is the routed one.
    for path in &documented {
        let listed: BTreeSet<String> = names(spec["paths"].get(path))
            .into_iter()
            .map(|m| m.to_uppercase())
            .collect();
        for method in METHODS.iter().filter(|m| !listed.contains(**m)) {
            let r = call(&b, method, &concrete(&spec, path)).await;
            assert_eq!(
                (r.status, r.code()),
                (405, "HTTP_METHOD_NOT_ALLOWED".to_string()),
                "{method} {path} is not in openapi.yaml, yet answered: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert_documented_error(&spec, &r);
        }
    }
}

/// The body of any error answer matches `#/components/schemas/Error`.
#[track_caller]
fn assert_documented_error(spec: &Value, r: &Resp) {
    let mut errs = Vec::new();
    check(
        spec,
        &spec["components"]["schemas"]["Error"],
        &r.json(),
        "$",
        &mut errs,
    );
    assert!(errs.is_empty(), "error body: {}", errs.join("; "));
}

#[tokio::test]
async fn openapi_answers_have_the_documented_properties() {
    let spec = spec();
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    let api = server(&spec);
    for path in ["/captcha", "/tax-authorities", "/modules"] {
        let r = b.get(&format!("{api}{path}")).await.expect(200);
        assert_documented(&spec, "GET", path, &r);
    }

    // Stage 1 (企业登录), then the whole login by SMS as the legal rep 赵敏.
    let s1 = b.stage1(A_USCC, A_PASSWORD).await.expect(200);
    assert_documented(&spec, "POST", "/login/enterprise", &s1);
    assert!(!s1.json()["officers"].as_array().unwrap().is_empty());
    let s2 = b.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    assert_documented(&spec, "POST", "/login/officer", &s2);

    let r = b.get(&format!("{api}/session")).await.expect(200);
    assert_documented(&spec, "GET", "/session", &r);
    assert_eq!(r.json()["can_manage_users"], true);

    let r = b.get(&format!("{api}/enterprise/users")).await.expect(200);
    assert_documented(&spec, "GET", "/enterprise/users", &r);
    assert!(
        r.json().as_array().unwrap().len() >= 4,
        "A has four officers"
    );

    let r = b
        .get(&format!("{api}/enterprise/candidates?q={LI_PHONE}"))
        .await
        .expect(200);
    assert_documented(&spec, "GET", "/enterprise/candidates", &r);

    // Real-name verification (实名认证) of a fixture person.
    let started = b
        .post(
            &format!("{api}/realname/start"),
            &serde_json::json!({"name": "韩梅梅", "id_number": "530103198911110046"}),
        )
        .await
        .expect(200);
    assert_documented(&spec, "POST", "/realname/start", &started);
    let id = started.json()["verification_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = b.get(&format!("{api}/realname/{id}")).await.expect(200);
    assert_documented(&spec, "GET", "/realname/{id}", &r);

    // An error answer: unknown field.
    let r = b
        .post(
            &format!("{api}/login/enterprise"),
            &serde_json::json!({"nope": 1}),
        )
        .await
        .expect_error(400, "INVALID_INPUT");
    assert_documented(&spec, "POST", "/login/enterprise", &r);

    // Logout: 204 without a body.
    let r = b
        .post(&format!("{api}/logout"), &serde_json::json!({}))
        .await;
    assert_documented(&spec, "POST", "/logout", &r.expect(204));
}

#[tokio::test]
async fn openapi_csrf_header_is_where_the_spec_says() {
    let spec = spec();
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    b.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    let token = b.csrf.take().expect("csrf token");
    for (method, path) in operations(&spec) {
        let op = operation(&spec, &method, &path);
        let r = call(&b, &method, &concrete(&spec, &path)).await;
        let label = format!("{method} {path}");
        let refused = r.status == 403 && r.code() == "CSRF_INVALID";
        assert_eq!(
            refused,
            needs_csrf(&spec, op),
            "{label} with a session and without X-CSRF-Token answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert_documented(&spec, &method, &path, &r);
    }
    // The refused logout left the session alive.
    b.csrf = Some(token);
    b.get(&format!("{}/session", server(&spec)))
        .await
        .expect(200);
}

/// The request body schema of an operation, if it has one.
fn body_schema<'a>(spec: &'a Value, op: &'a Value) -> Option<&'a Value> {
    let body = resolve(spec, op.get("requestBody")?);
    Some(resolve(
        spec,
        &body["content"]["application/json"]["schema"],
    ))
}

/// A value of the right JSON type for a body property: `text` for a string, `[text]`
/// for an array of strings, the first value of an enum.
fn sample(spec: &Value, prop: &Value, text: &str) -> Value {
    let prop = resolve(spec, prop);
    if let Some(first) = prop["enum"].get(0) {
        return first.clone();
    }
    match prop["type"].as_str() {
        Some("string") => Value::from(text),
        Some("array") => Value::Array(vec![sample(spec, &prop["items"], text)]),
        other => panic!("no sample for a body property of type {other:?}"),
    }
}

/// The `maxLength` of a string property (or of the strings of an array property).
fn max_length(spec: &Value, prop: &Value) -> Option<usize> {
    let prop = resolve(spec, prop);
    match prop["type"].as_str() {
        Some("array") => max_length(spec, &prop["items"]),
        _ => prop["maxLength"].as_u64().map(|n| n as usize),
    }
}

/// The field names serde lists in "unknown field `x`, expected one of `a`, `b`".
fn expected_fields(message: &str) -> BTreeSet<String> {
    let (_, expected) = message
        .split_once("expected")
        .unwrap_or_else(|| panic!("no field list in {message:?}"));
    let expected = expected.split(" at line").next().unwrap_or(expected);
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The request bodies are the handlers' structs: the field names (serde lists them when
/// refusing an unknown field), which of them are required (serde names a missing one),
/// and each string's maxLength (N characters pass the length check, N + 1 do not).
#[tokio::test]
async fn openapi_request_bodies_are_the_handlers_structs() {
    let spec = spec();
    let gw = Gateway::start_with(GatewayOptions {
        extra_yaml: "limits: {ip_requests_per_minute: 100000}".into(),
        ..Default::default()
    })
    .await;
    // The legal rep's session, so that user management reaches its body parser.
    let mut b = Browser::new(&gw);
    b.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    let send = |method: String, url: String, body: Value| {
        let b = &b;
        async move { b.send(&method, &url, &[], Some(&body.to_string())).await }
    };
    let message = |r: &Resp| {
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    for (method, path) in operations(&spec) {
        let op = operation(&spec, &method, &path);
        let url = concrete(&spec, &path);
        let label = format!("{method} {path}");
        let Some(schema) = body_schema(&spec, op) else {
            continue;
        };
        let props = schema["properties"].as_object().expect("body properties");
        let documented = names(schema.get("properties"));
        let required = names(schema.get("required"));
        let full: serde_json::Map<String, Value> = props
            .iter()
            .map(|(k, p)| (k.clone(), sample(&spec, p, "a")))
            .collect();

        // Field names.
        let mut body = full.clone();
        body.insert("zz_not_a_field".into(), Value::from("a"));
        let r = send(method.clone(), url.clone(), Value::Object(body)).await;
        let m = message(&r);
        assert!(
            r.status == 400 && m.contains("unknown field"),
            "{label}: an unknown field was not refused: {m}"
        );
        assert_eq!(expected_fields(&m), documented, "{label}: body fields");

        // Required and optional fields.
        for field in &documented {
            let mut body = full.clone();
            body.remove(field);
            let r = send(method.clone(), url.clone(), Value::Object(body)).await;
            let missing = message(&r).contains(&format!("missing field `{field}`"));
            assert_eq!(
                missing,
                required.contains(field),
                "{label}: is `{field}` required? the gateway answered {}",
                String::from_utf8_lossy(&r.body)
            );
        }

        // Lengths.
        for (field, prop) in props {
            let Some(max) = max_length(&spec, prop) else {
                continue;
            };
            for (len, refused) in [(max, false), (max + 1, true)] {
                let mut body = full.clone();
                body.insert(field.clone(), sample(&spec, prop, &"x".repeat(len)));
                let r = send(method.clone(), url.clone(), Value::Object(body)).await;
                let too_long = message(&r).contains(&format!("longer than {max} characters"));
                assert_eq!(
                    too_long,
                    refused,
                    "{label}: `{field}` of {len} characters (maxLength {max}) answered {}",
                    String::from_utf8_lossy(&r.body)
                );
            }
        }

        // Control characters (the patterns exclude Unicode Cc), at both ends of the range.
        for (field, prop) in props {
            if max_length(&spec, prop).is_none() {
                continue;
            }
            for control in ['\u{1}', '\u{9f}'] {
                let mut body = full.clone();
                body.insert(field.clone(), sample(&spec, prop, &format!("a{control}")));
                let r = send(method.clone(), url.clone(), Value::Object(body)).await;
                assert!(
                    r.status == 400 && message(&r).contains("control characters"),
                    "{label}: `{field}` with U+{:04X} answered {}",
                    control as u32,
                    String::from_utf8_lossy(&r.body)
                );
            }
        }
    }
}

/// A path parameter that makes the path malformed is refused before routing, with the
/// 400 the operations with path parameters document.
#[tokio::test]
async fn openapi_malformed_path_parameters_are_documented_400() {
    let spec = spec();
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    for (method, path) in operations(&spec) {
        if !path.contains('{') {
            continue;
        }
        for bad in ["..", "a%2Fb", "a%00", "a%25"] {
            let url = concrete(&spec, &path).replace(DUMMY, bad);
            let r = call(&b, &method, &url).await;
            assert_eq!(
                (r.status, r.json()["error"]["field"].as_str()),
                (400, Some("path")),
                "{method} {url}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert_documented(&spec, &method, &path, &r);
        }
    }
}
