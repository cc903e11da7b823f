"""The Kimina Lean Server backend, against a local HTTP stand-in that serves the Kimina server's own recorded
replies (../shared/data/lean-output/kimina-repl-match) for the recorded Lean files."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import SHARED

from autoform.config import LeanConfig, Settings
from autoform.lean import make_oracle
from autoform.lean.gate import Candidate, admit
from autoform.lean.oracle import OracleUnavailable

MATCH = SHARED / "lean-output" / "kimina-repl-match" / "tests" / "match"


def _split(code: str) -> tuple[list[str], str]:
    """Kimina's own split: leading import and blank lines are the header; the rest is the body."""
    lines = code.splitlines()
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("import ")):
        i += 1
    return [x.strip() for x in lines[:i] if x.strip()], "\n".join(lines[i:])


class _Kimina:
    def __init__(self, records: dict[str, dict], *, status: int = 200, api_key: str | None = None) -> None:
        self.records, self.status, self.api_key, self.requests = records, status, api_key, []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body, dict(self.headers)))
                if outer.api_key and self.headers.get("X-Auth-Token") != f"Bearer {outer.api_key}":
                    return self._send(401, {"detail": "Invalid API key"})
                if outer.status != 200:
                    return self._send(outer.status, {"detail": "boom"})
                if self.path == "/api/check":
                    snip = body["snippets"][0]
                    rec = outer.records.get(_split(snip["code"])[1])
                    item = {"id": snip["id"], "time": 1.0}
                else:
                    snip = body["codes"][0]
                    rec = outer.records.get(_split(snip["proof"])[1])
                    item = {"custom_id": snip["custom_id"]}
                item.update(
                    {"error": rec["error"], "response": rec["response"]}
                    if rec is not None
                    else {"error": "Lean error: no recorded reply", "response": None}
                )
                return self._send(200, {"results": [item]})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()


def _records() -> dict[str, dict]:
    out = {}
    for f in sorted((MATCH / "input").glob("*.lean")):
        rec = MATCH / "output" / f"{f.stem}.json"
        if rec.exists():
            out[_split(f.read_text())[1]] = json.loads(rec.read_text())["results"][0]
    return out


def _settings(tmp_path: Path, url: str, **kw: object) -> Settings:
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    return Settings(
        home=tmp_path,
        lean=LeanConfig(
            backend="kimina",
            kimina_url=url,
            project_dir=str(proj),
            header="import Mathlib\nimport Aesop",
            timeout_s=5,
            **kw,
        ),
    )


@pytest.mark.skipif(not MATCH.exists(), reason="../shared/data/lean-output/kimina-repl-match is absent")
@pytest.mark.parametrize("api", ["check", "verify"])
def test_recorded_kimina_replies_through_the_client(tmp_path, api):
    records = _records()
    srv = _Kimina(records)
    try:
        o = make_oracle(_settings(tmp_path, srv.url, kimina_api=api))
        n_msgs = n_failures = 0
        for f in sorted((MATCH / "input").glob("*.lean")):
            header, body = _split(f.read_text())
            chk = o.check(body)
            item = records[body]
            if item["error"]:  # the server recorded a Lean timeout: a rejection, never a pass
                assert chk.failure and item["error"] in chk.failure
                n_failures += 1
                continue
            rec = item["response"]
            assert chk.failure is None, chk.failure
            assert [(m.severity, m.line, m.column, m.text) for m in chk.messages] == [
                (m["severity"], m["pos"]["line"], m["pos"]["column"], m["data"]) for m in rec.get("messages", [])
            ]
            n_msgs += len(chk.messages)
            # positions are relative to the body, i.e. to the code the gate built
            for m in chk.messages:
                if "never executed" in m.text:
                    assert body.splitlines()[m.line - 1][m.column :].strip()
        assert n_msgs > 100 and n_failures == 4
        path, payload, _ = srv.requests[0]
        assert path == ("/api/check" if api == "check" else "/verify")
        sent = payload["snippets"][0]["code"] if api == "check" else payload["codes"][0]["proof"]
        assert sent.startswith("import Mathlib\nimport Aesop\n")
    finally:
        srv.close()


def test_kimina_errors_are_rejections(tmp_path):
    srv = _Kimina({})
    try:
        o = make_oracle(_settings(tmp_path, srv.url))
        c = Candidate(kind="theorem", namespace="N", statement="theorem t : True", proof="trivial", locked_type="x")
        v = admit(c, o)
        assert not v.admitted and v.reasons[0].code == "lean_failure" and "no recorded reply" in v.summary()
        with pytest.raises(OracleUnavailable, match="Kimina"):
            o.start()
    finally:
        srv.close()
    srv = _Kimina({}, status=500)
    try:
        chk = make_oracle(_settings(tmp_path, srv.url)).check("example : True := trivial")
        assert chk.failure and "HTTP 500" in chk.failure
    finally:
        srv.close()
    chk = make_oracle(_settings(tmp_path, "http://127.0.0.1:9")).check("example : True := trivial")
    assert chk.failure and "cannot reach" in chk.failure


def test_kimina_api_key(tmp_path, monkeypatch):
    srv = _Kimina({"example : True := trivial": {"error": None, "response": {"env": 0}}}, api_key="s3cret")
    try:
        chk = make_oracle(_settings(tmp_path, srv.url)).check("example : True := trivial")
        assert chk.failure and "401" in chk.failure
        monkeypatch.setenv("KIMINA_API_KEY", "s3cret")
        chk = make_oracle(_settings(tmp_path, srv.url)).check("example : True := trivial")
        assert chk.failure is None
    finally:
        srv.close()
