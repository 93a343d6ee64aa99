"""Custom headers providers: called on every connection attempt, errors mapped."""
import threading

import pytest

from zerobus import NonRetriableException, ZerobusException
from zerobus.sdk.shared import (
    HeadersProvider,
    RecordType,
    StreamConfigurationOptions,
    TableProperties,
)


class TokenProvider(HeadersProvider):
    def __init__(self, server, table):
        self.server = server
        self.table = table
        self.calls = 0
        self.threads = set()

    def get_headers(self):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        return [("authorization", "Bearer " + self.server.token(self.table)),
                ("x-databricks-zerobus-table-name", self.table)]


def json_opts(**kw):
    return StreamConfigurationOptions(record_type=RecordType.JSON, **kw)


def test_custom_headers_provider(sdk, server, table):
    provider = TokenProvider(server, table)
    tokens_before = server.counters()["tokens_issued"]
    stream = sdk.create_stream("", "", TableProperties(table), json_opts(),
                               headers_provider=provider)
    with stream:
        stream.ingest_record_offset({"h": 1})
    assert provider.calls == 1
    # OAuth credentials were not used: the only token is the provider's own
    assert server.counters()["tokens_issued"] == tokens_before + 1
    assert server.rows(table) == ['{"h":1}']


def test_headers_provider_called_again_after_recovery(sdk, server, table):
    provider = TokenProvider(server, table)
    server.set_faults(table, [{"drop_at_request": 1}])
    with sdk.create_stream(None, None, TableProperties(table),
                           json_opts(recovery_backoff_ms=10), headers_provider=provider) as s:
        for i in range(3):
            s.ingest_record_offset({"i": i})
            s.flush()
        assert s.get_stats().reconnects == 1
    assert provider.calls == 2
    assert server.rows(table) == ['{"i":0}', '{"i":1}', '{"i":2}']


def test_plain_callable_provider(sdk, server, table):
    tok = server.token(table)
    with sdk.create_stream(None, None, TableProperties(table), json_opts(),
                           headers_provider=lambda: {
                               "authorization": "Bearer " + tok,
                               "x-databricks-zerobus-table-name": table}) as s:
        s.ingest_record_offset({"c": 1})
    assert server.rows(table) == ['{"c":1}']


def test_provider_raising_non_retriable_fails_at_once(sdk, server, table):
    class Broken(HeadersProvider):
        calls = 0

        def get_headers(self):
            Broken.calls += 1
            raise NonRetriableException("vault is sealed")

    with pytest.raises(NonRetriableException) as ei:
        sdk.create_stream(None, None, TableProperties(table), json_opts(),
                          headers_provider=Broken())
    e = ei.value
    assert e.code == 19 and e.status_name == "ZEROBUS_ERR_HEADERS_PROVIDER"
    assert "vault is sealed" in str(e) and "NonRetriableException" in str(e)
    assert Broken.calls == 1


def test_provider_raising_is_retried(sdk, server, table):
    good = TokenProvider(server, table)

    class Flaky(HeadersProvider):
        calls = 0

        def get_headers(self):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise ValueError("transient")
            return good.get_headers()

    with sdk.create_stream(None, None, TableProperties(table),
                           json_opts(recovery_backoff_ms=10), headers_provider=Flaky()) as s:
        s.ingest_record_offset({"f": 1})
    assert Flaky.calls == 2
    assert server.rows(table) == ['{"f":1}']


@pytest.mark.parametrize("bad,match", [
    (lambda: 5, "list of"),
    (lambda: [("authorization",)], "pair"),
    (lambda: [("authorization", 5)], "must be str"),
    (lambda: [("x-databricks-zerobus-table-name", "t")], "authorization"),
])
def test_provider_bad_results(sdk, table, bad, match):
    with pytest.raises(ZerobusException) as ei:
        sdk.create_stream(None, None, TableProperties(table), json_opts(recovery=False),
                          headers_provider=bad)
    assert ei.value.status_name == "ZEROBUS_ERR_HEADERS_PROVIDER"
    assert match in str(ei.value)


def test_provider_type_checked(sdk, table):
    with pytest.raises(TypeError):
        sdk.create_stream(None, None, TableProperties(table), json_opts(), headers_provider=42)


def test_provider_reference_is_released(sdk, server, table):
    import gc
    import weakref

    provider = TokenProvider(server, table)
    ref = weakref.ref(provider)
    stream = sdk.create_stream(None, None, TableProperties(table), json_opts(),
                               headers_provider=provider)
    stream.close()
    del stream, provider
    gc.collect()
    assert ref() is None  # the core's user_data_free dropped the binding's reference

    class Failing(HeadersProvider):
        def get_headers(self):
            raise NonRetriableException("no")

    failing = Failing()
    fref = weakref.ref(failing)
    with pytest.raises(NonRetriableException):
        sdk.create_stream(None, None, TableProperties(table), json_opts(),
                          headers_provider=failing)
    del failing
    gc.collect()
    assert fref() is None  # released on the failed creation too
