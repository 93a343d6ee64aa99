"""OAuth token endpoint, gRPC auth checks and the Unity Catalog endpoint."""
import json
import time
import urllib.parse

import pytest

from zlclient import OK, Server, CallEnded

T = "cat1.sch1.tbl1"
OTHER = "cat1.sch1.other"


@pytest.fixture(scope="module")
def srv():
    s = Server("--table", "cat1.sch1.tbl1=id:bigint:required,name:string,"
               "tags:array<string>,m:map<string,int>,s:struct<a:int,b:string>")
    yield s
    s.kill()


def ended(call, fn):
    with pytest.raises(CallEnded) as e:
        fn()
    return e.value.code.name, e.value.details


def test_token_issued_with_basic_auth(srv):
    before = srv.counters()["tokens_issued"]
    st, body = srv.token_request(T)
    assert st == 200, body
    j = json.loads(body)
    assert j["token_type"] == "Bearer" and j["expires_in"] == 3600
    assert isinstance(j["access_token"], str) and len(j["access_token"]) > 16
    assert srv.counters()["tokens_issued"] == before + 1


def test_token_bad_secret_is_401_json(srv):
    st, body = srv.token_request(T, secret="wrong")
    assert st == 401
    assert json.loads(body)["error"] == "invalid_client"
    st, body = srv.token_request(T, client_id="nobody")
    assert st == 401


def test_token_bad_form_is_400(srv):
    st, body = srv.token_request(T, form={"grant_type": "password"})
    assert st == 400 and json.loads(body)["error"] == "unsupported_grant_type"
    st, body = srv.token_request(T, form={"grant_type": "client_credentials",
                                          "authorization_details": "not json"})
    assert st == 400 and json.loads(body)["error"] == "invalid_request"
    details = [{"type": "unity_catalog_privileges", "object_type": "CATALOG",
                "object_full_path": "cat1", "privileges": ["USE CATALOG"]}]
    st, body = srv.token_request(T, form={"grant_type": "client_credentials",
                                          "authorization_details": json.dumps(details)})
    assert st == 400 and "TABLE" in json.loads(body)["error_description"]
    details = [{"type": "unity_catalog_privileges", "object_type": "TABLE",
                "object_full_path": "only.two", "privileges": ["MODIFY"]}]
    st, body = srv.token_request(T, form={"grant_type": "client_credentials",
                                          "authorization_details": json.dumps(details)})
    assert st == 400


def test_grpc_good_token_ingests(srv):
    tok = srv.token(T)
    c = srv.call(table=T, token=tok)
    c.create(T)
    c.ingest_json('{"id": 7}')
    assert c.wait_ack(0) == 0
    c.half_close()
    assert c.wait_status()[0] == OK
    assert srv.rows(T, "id") == [(7,)]


def test_grpc_missing_token_unauthenticated(srv):
    f0 = srv.table_counter(T, "auth_failures")
    c = srv.call(table=T)
    code, details = ended(c, lambda: c.create(T))
    assert code == "UNAUTHENTICATED" and "authorization" in details
    assert srv.table_counter(T, "auth_failures") == f0 + 1


def test_grpc_bad_token_unauthenticated(srv):
    c = srv.call(table=T, token="zl-not-a-token")
    assert ended(c, lambda: c.create(T)) == ("UNAUTHENTICATED", "invalid access token")


def test_grpc_token_for_other_table_permission_denied(srv):
    tok = srv.token(OTHER)
    c = srv.call(table=T, token=tok)
    code, _ = ended(c, lambda: c.create(T))
    assert code == "PERMISSION_DENIED"


def test_grpc_header_mismatch_with_create_permission_denied(srv):
    tok = srv.token(T)
    c = srv.call(table=T, token=tok)
    code, details = ended(c, lambda: c.create(OTHER))
    assert code == "PERMISSION_DENIED" and "does not match" in details


def test_grpc_missing_table_header_unauthenticated(srv):
    tok = srv.token(T)
    c = srv.call(metadata=[("authorization", f"Bearer {tok}")])
    code, details = ended(c, lambda: c.create(T))
    assert code == "UNAUTHENTICATED" and "x-databricks-zerobus-table-name" in details


def test_expired_token_refused():
    s = Server("--token-ttl", "1")
    try:
        st, body = s.token_request(T)
        assert json.loads(body)["expires_in"] == 1
        tok = json.loads(body)["access_token"]
        c = s.call(table=T, token=tok)
        c.create(T)
        c.half_close()
        assert c.wait_status()[0] == OK
        time.sleep(1.2)
        c = s.call(table=T, token=tok)
        assert ended(c, lambda: c.create(T)) == ("UNAUTHENTICATED", "access token expired")
        # UC refuses it too
        st, _ = s.http("GET", "/api/2.1/unity-catalog/tables/" + T,
                       headers={"Authorization": f"Bearer {tok}"})
        assert st == 401
    finally:
        s.kill()


def test_custom_client_credentials():
    s = Server("--client-id", "me", "--client-secret", "s3cret")
    try:
        assert s.token_request(T)[0] == 401
        assert s.token_request(T, client_id="me", secret="s3cret")[0] == 200
    finally:
        s.kill()


def test_uc_table_schema(srv):
    tok = srv.token(T)
    st, body = srv.http("GET", "/api/2.1/unity-catalog/tables/" + urllib.parse.quote(T),
                        headers={"Authorization": f"Bearer {tok}"})
    assert st == 200, body
    j = json.loads(body)
    assert j["name"] == "tbl1" and j["full_name"] == T
    assert j["columns"] == [
        {"name": "id", "type_text": "bigint", "nullable": False, "type_name": "LONG",
         "position": 0},
        {"name": "name", "type_text": "string", "nullable": True, "type_name": "STRING",
         "position": 1},
        {"name": "tags", "type_text": "array<string>", "nullable": True, "type_name": "ARRAY",
         "position": 2},
        {"name": "m", "type_text": "map<string,int>", "nullable": True, "type_name": "MAP",
         "position": 3},
        {"name": "s", "type_text": "struct<a:int,b:string>", "nullable": True,
         "type_name": "STRUCT", "position": 4},
    ]


def test_uc_quoted_name_and_unknown_table(srv):
    tok = srv.token(T)
    h = {"Authorization": f"Bearer {tok}"}
    st, _ = srv.http("GET", "/api/2.1/unity-catalog/tables/cat1%2Esch1%2Etbl1", headers=h)
    assert st == 200
    st, body = srv.http("GET", "/api/2.1/unity-catalog/tables/cat1.sch1.nope", headers=h)
    assert st == 404 and json.loads(body)["error_code"] == "TABLE_DOES_NOT_EXIST"


def test_uc_requires_bearer(srv):
    st, body = srv.http("GET", "/api/2.1/unity-catalog/tables/" + T)
    assert st == 401 and json.loads(body)["error"] == "UNAUTHENTICATED"
    st, _ = srv.http("GET", "/api/2.1/unity-catalog/tables/" + T,
                     headers={"Authorization": "Bearer nope"})
    assert st == 401


def test_uc_config_file_and_no_auth(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"tables": {"a.b.c": [
        {"name": "x", "type_text": "int", "nullable": False},
        {"name": "y", "type_text": "timestamp"}]}}))
    s = Server("--no-auth", "--config", str(cfg))
    try:
        st, body = s.http("GET", "/api/2.1/unity-catalog/tables/a.b.c")
        assert st == 200
        cols = json.loads(body)["columns"]
        assert [(c["name"], c["type_name"], c["nullable"], c["position"]) for c in cols] == \
            [("x", "INT", False, 0), ("y", "TIMESTAMP", True, 1)]
    finally:
        s.kill()


def test_strict_tables_unknown_table_not_found():
    s = Server("--no-auth", "--strict-tables", "--table", "a.b.known=id:int")
    try:
        c = s.call(table="a.b.unknown")
        assert ended(c, lambda: c.create("a.b.unknown"))[0] == "NOT_FOUND"
        c = s.call(table="a.b.known")
        c.create("a.b.known")
        c.half_close()
        assert c.wait_status()[0] == OK
    finally:
        s.kill()
