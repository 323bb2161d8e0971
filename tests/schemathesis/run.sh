#!/usr/bin/env bash
# Schemathesis (pinned in requirements.txt) against a real taxgate, as CI runs it:
#   bash tests/schemathesis/run.sh target/debug/taxgate [extra `st run` options]
# Installs python3-venv with apt-get if needed (CI runs as root on fresh Debian), the
# pinned schemathesis into target/schemathesis-venv (reused while requirements.txt is
# unchanged), starts `taxgate serve` on 127.0.0.1:0 with a fresh data dir, the demo
# registry and the development providers (see README.md for why not `taxgate demo`),
# logs in as the demo legal rep for the session operations, runs `st run` over
# openapi.yaml against /api/v1 with every check (schemathesis.toml), stops the gateway
# and exits with schemathesis's status.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 PATH/TO/taxgate [st run options]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/schemathesis
bin=$(realpath "$1")
shift
[ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }

# Python with venv + ensurepip (Debian ships them in python3-venv).
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi

# The pinned schemathesis, every dependency pinned too (--no-deps: exactly the list).
venv=$root/target/schemathesis-venv
if ! cmp -s "$here/requirements.txt" "$venv/requirements.installed" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.installed"
fi
"$venv/bin/st" --version

# A real gateway: fresh data dir, demo registry, outbox and fixture providers.
work=$(mktemp -d "${TMPDIR:-/tmp}/taxgate-schemathesis-XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/taxgate.yaml" <<EOF
mode: development
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: $work/data
secret_key: "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
shutdown_grace_seconds: 1
schema: $root/schema/taxgate.cedarschema
policies: $root/policies
modules: $root/config/modules.yaml
providers:
  captcha: {kind: outbox, outbox: $work/outbox.jsonl}
  sms: {kind: outbox, outbox: $work/outbox.jsonl}
  realname: {kind: fixture, fixture: $root/config/demo-realname.yaml}
# The demo's per-address limit (120 a minute per endpoint class) would answer most of
# schemathesis's requests with 429; everything else is the default.
limits: {ip_requests_per_minute: 1000000}
# Development-mode hashing parameters (as the black-box tests use), so that the many
# login attempts do not spend the run in argon2.
argon2: {memory_kib: 256, iterations: 1, parallelism: 1}
# Certificate login on, with the demo CAs, so POST /login/ca is checked past "not
# configured".
ca_roots:
  - {name: demo CA, kind: ca, root_file: $work/pki/ca/root.pem, crl_file: $work/pki/ca/crl.pem}
  - {name: demo device CA, kind: device, root_file: $work/pki/device/root.pem}
EOF
"$bin" dev pki --out "$work/pki" --registry "$root/config/demo-registry.yaml" >/dev/null
"$bin" registry import --config "$work/taxgate.yaml" "$root/config/demo-registry.yaml" >/dev/null
RUST_LOG=${RUST_LOG:-warn} "$bin" serve --config "$work/taxgate.yaml" >"$work/stdout" 2>"$work/stderr" &
pid=$!
url=
for _ in $(seq 300); do
  url=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$work/stdout")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "taxgate did not print 'listening on' within 30 s:" >&2
  cat "$work/stdout" "$work/stderr" >&2
  exit 1
fi
echo "$("$bin" --version) listening on $url"

# A session of the demo legal rep 张三 (滇池科技), by SMS; codes come from the outbox.
eval "$("$venv/bin/python" - "$url/api/v1" "$work/outbox.jsonl" <<'EOF'
import json, shlex, sys, time
import requests

api, outbox = sys.argv[1], sys.argv[2]
s = requests.Session()

def from_outbox(pred):
    for _ in range(100):
        try:
            with open(outbox, encoding="utf-8") as f:
                hits = [l for l in map(json.loads, filter(None, f.read().splitlines())) if pred(l)]
        except FileNotFoundError:
            hits = []
        if hits:
            return hits[-1]
        time.sleep(0.1)
    sys.exit(f"nothing in {outbox} for the login")

def post(path, body):
    r = s.post(api + path, json=body, timeout=30)
    if r.status_code != 200:
        sys.exit(f"login: POST {path} answered {r.status_code}: {r.text}")
    return r.json()

c = s.get(api + "/captcha", timeout=30).json()
answer = from_outbox(lambda l: l.get("kind") == "captcha" and l.get("captcha_id") == c["captcha_id"])["answer"]
stage1 = post("/login/enterprise", {"account": "91530102709712345P", "password": "Dianchi@2026",
                                    "captcha_id": c["captcha_id"], "captcha_answer": answer})
officer = next(o for o in stage1["officers"] if "legal_rep" in o["roles"])
post("/login/officer/sms", {"login_ticket": stage1["login_ticket"], "officer_id": officer["officer_id"]})
code = from_outbox(lambda l: l.get("kind") == "sms" and l.get("phone") == "13800000001")["code"]
session = post("/login/officer", {"login_ticket": stage1["login_ticket"], "officer_id": officer["officer_id"],
                                  "method": "sms", "sms_code": code})
print("export TAXGATE_SESSION=" + shlex.quote(s.cookies["taxgate_session"]))
print("export TAXGATE_CSRF=" + shlex.quote(session["csrf_token"]))
EOF
)"

# From target/schemathesis, where schemathesis keeps its cache (`st replay ID`).
mkdir -p "$root/target/schemathesis"
cd "$root/target/schemathesis"
set +e
"$venv/bin/st" --config-file "$here/schemathesis.toml" run "$root/openapi.yaml" --url "$url/api/v1" "$@"
rc=$?
set -e
if ! kill -0 "$pid" 2>/dev/null; then
  echo "taxgate exited during the run:" >&2
  tail -n 50 "$work/stderr" >&2
  rc=1
fi
exit "$rc"
