"""The PostgreSQL ledger against a real server: same promises as SQLite, schema, failures, lock, copy."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import trustme

from tests.support.common import TLSFiles
from tests.support.pg_server import APP_PASSWORD, APP_USER, PostgresServer
from tests.support.pg_tls import TlsFront
from xoromail_cli.errors import ConfigError, ExitCode, TemporaryError, UnavailableError, XoromailError
from xoromail_cli.ledger import location as ledger_url
from xoromail_cli.ledger.postgres import SCHEMA_VERSION, PostgresLedger
from xoromail_cli.ledger.sqlite import Ledger

ACCOUNT = "billing@company.test"


def test_the_schema_is_created_on_first_use_and_versioned(pg_url: str) -> None:
    PostgresLedger(pg_url).close()
    PostgresLedger(pg_url).close()
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT version FROM xoromail_schema").fetchall() == [(SCHEMA_VERSION,)]
        names = {row[0] for row in db.execute("SELECT application_name FROM pg_stat_activity")}
        assert "xoromail" not in names  # every ledger connection above was closed


def test_the_connection_names_itself_xoromail(pg_url: str) -> None:
    with PostgresLedger(pg_url), psycopg.connect(pg_url) as db:
        names = [row[0] for row in db.execute("SELECT application_name FROM pg_stat_activity "
                                              "WHERE datname = current_database()")]
        assert "xoromail" in names


def test_a_ledger_written_by_a_newer_release_is_refused_not_misread(pg_url: str) -> None:
    PostgresLedger(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE xoromail_schema SET version = 99")
    for read_only in (False, True):
        with pytest.raises(ConfigError, match=r"newer xoromail \(schema 99") as caught:
            PostgresLedger(pg_url, read_only=read_only)
        assert caught.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_both_ledgers_keep_the_same_record(kind: str, pg_url: str, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3") if kind == "sqlite" else PostgresLedger(pg_url)
    with ledger:
        first = ledger.begin(ACCOUNT, "e", "k1", ("a@x.test", "b@x.test"), "<1@company.test>", 3, profile="default")
        assert ledger.last_sent(ACCOUNT, "k1") is None
        assert [e.id for e in ledger.interrupted(ACCOUNT, "e")] == [first]
        ledger.finish(first, "partial", "delivered except to b@x.test", ("b@x.test",), ("b@x.test",))
        found = ledger.last_sent(ACCOUNT, "k1")
        assert found is not None and found.pending == ("b@x.test",) and found.row == 3 and found.profile == "default"
        assert ledger.last_sent("other@company.test", "k1") is None
        ledger.record(ACCOUNT, "e", "k2", ("c@x.test",), "<2@company.test>", 4, "temporary", "451 busy")
        assert [e.idempotency_key for e in ledger.entries(account=ACCOUNT, failed=True)] == ["k1", "k2"]
        assert [e.event for e in ledger.entries(account=ACCOUNT, to="B@x.test")] == ["e"]
        assert ledger.count_since(ACCOUNT, found.created_at) == (1, 2)
        lost = ledger.begin(ACCOUNT, "e", "k3", ("d@x.test",), "<3@company.test>", 5)
        ledger.settle_interrupted(lost)
        assert ledger.interrupted(ACCOUNT) == []
        assert [e.status for e in ledger.entries(account=ACCOUNT)] == ["partial", "temporary", "interrupted"]


def test_an_unreachable_database_is_exit_75_naming_the_ledger(postgres: PostgresServer) -> None:
    from tests.support.pg_server import free_port

    url = f"postgresql://xoromail_app@127.0.0.1:{free_port()}/erp"
    with pytest.raises(TemporaryError, match=r"cannot reach the ledger database postgresql://xoromail_app@127\.0\.0"
                                             r"\.1:\d+/erp: Connection refused") as caught:
        PostgresLedger(url)
    assert "\n" not in caught.value.message and "nothing was sent" in (caught.value.hint or "")


def test_a_host_name_that_does_not_resolve_is_exit_69() -> None:
    with pytest.raises(UnavailableError, match=r"ledger database .*nonexistent\.invalid") as caught:
        PostgresLedger("postgresql://u@db.nonexistent.invalid:5432/erp", connect_timeout=2)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE


def test_a_wrong_password_is_exit_75_with_the_servers_words_and_never_the_password(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD")
    with pytest.raises(TemporaryError, match='password authentication failed for user "xoromail_app"') as caught:
        PostgresLedger(pg_url, password="wrong-secret-123")
    assert "wrong-secret-123" not in f"{caught.value.message} {caught.value.hint}"
    assert "PGPASSWORD" in (caught.value.hint or "")


def test_tls_required_but_refused_is_exit_75_with_a_tls_hint(pg_url: str) -> None:
    with pytest.raises(TemporaryError, match="server does not support SSL, but SSL was required") as caught:
        PostgresLedger(pg_url + "?sslmode=require")
    assert "sslrootcert" in (caught.value.hint or "")


def test_a_connection_lost_mid_batch_stops_at_the_next_write(pg_url: str) -> None:
    with PostgresLedger(pg_url) as ledger, psycopg.connect(pg_url, autocommit=True) as admin:
        ledger.begin(ACCOUNT, "e", "k1", ("a@x.test",), "<1@x>", 1)
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'xoromail'")
        with pytest.raises(TemporaryError, match=r"lost the ledger database .*recording a message") as caught:
            ledger.begin(ACCOUNT, "e", "k2", ("b@x.test",), "<2@x>", 2)
        assert "batch stopped" in (caught.value.hint or "")


def test_one_sender_per_account_across_connections_and_wait_queues_behind_it(pg_url: str) -> None:
    with PostgresLedger(pg_url) as first, PostgresLedger(pg_url) as second, first.exclusive(ACCOUNT, wait=0):
        with pytest.raises(TemporaryError, match=r"another xoromail run .* is sending for this account"), \
                second.exclusive(ACCOUNT, wait=0.3):
            pass
        with second.exclusive("someone-else@company.test", wait=0):
            pass
        release = threading.Timer(0.5, first.close)  # the holder's session ends: the server frees the lock
        started = time.monotonic()  # before the timer starts: a loaded machine may pause this thread after it
        release.start()
        with second.exclusive(ACCOUNT, wait=10):
            assert time.monotonic() - started >= 0.4
        release.join()


def test_a_killed_holder_frees_the_lock_at_once(pg_url: str) -> None:
    code = ("import sys, time\nfrom xoromail_cli.ledger.postgres import PostgresLedger\n"
            "ledger = PostgresLedger(sys.argv[1])\nwith ledger.exclusive('billing@company.test', 0):\n"
            "    print('held', flush=True)\n    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, pg_url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with PostgresLedger(pg_url) as other:
            with pytest.raises(TemporaryError), other.exclusive(ACCOUNT, wait=0):
                pass
            holder.kill()
            holder.wait(timeout=10)
            with other.exclusive(ACCOUNT, wait=10):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_the_password_can_live_in_the_keyring_instead_of_the_url(pg_url: str, monkeypatch: pytest.MonkeyPatch,
                                                                 postgres: PostgresServer) -> None:
    monkeypatch.delenv("PGPASSWORD")
    with_password = pg_url.replace("xoromail_app@", f"xoromail_app:{APP_PASSWORD.replace(' ', '%20')}@")
    saved, password = ledger_url.split_password(with_password)  # an old settings file's URL
    assert saved == pg_url and APP_PASSWORD not in saved and password == APP_PASSWORD
    from xoromail_cli.credentials import write_secret

    write_secret("default", ledger_url.SECRET_KIND, password)
    assert ledger_url.redact(with_password) == pg_url.replace("xoromail_app@", "xoromail_app:***@")
    ledger_url.open_ledger(ledger_url.parse(saved), "default").close()
    with pytest.raises(XoromailError, match=r"password authentication failed|no password supplied"):
        ledger_url.open_ledger(ledger_url.parse(saved), "another-profile")


def test_psycopg_is_imported_only_when_a_postgresql_ledger_is_opened(tmp_path: Path) -> None:
    code = ("import sys\nfrom pathlib import Path\nfrom xoromail_cli.ledger import location as ledger_url\n"
            "from xoromail_cli.sending import plan, sender\n"
            "from xoromail_cli.cli import log_cmd, send_cmd\n"
            f"ledger_url.open_ledger(ledger_url.parse('sqlite://{tmp_path}/l.sqlite3'), 'p').close()\n"
            "assert 'psycopg' not in sys.modules, 'psycopg loaded for a SQLite ledger'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_verify_full_tls_with_the_databases_ca_connects_and_a_wrong_ca_is_refused(
        tls: TLSFiles, tmp_path: Path, postgres: PostgresServer) -> None:
    issued = tls.ca.issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    issued.configure_cert(context)
    front = TlsFront(backend_port=postgres.port, context=context)  # the database's TLS, in front of the test server
    try:
        postgres.create_database("erp_tls")
        url = (f"postgresql://{APP_USER}@127.0.0.1:{front.port}/erp_tls"
               f"?sslmode=verify-full&sslrootcert={tls.ca_file}")
        with PostgresLedger(url, password=APP_PASSWORD) as ledger:
            ledger.begin(ACCOUNT, "e", "k", ("a@x.test",), "<1@x>", 1)
            assert ledger.last_sent(ACCOUNT, "k") is None
        assert front.handshakes and all(version.startswith("TLSv1.") for version in front.handshakes)
        other_ca = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other_ca))
        with pytest.raises(TemporaryError, match="certificate verify failed") as caught:
            PostgresLedger(url.replace(str(tls.ca_file), str(other_ca)), password=APP_PASSWORD)
        assert "sslrootcert" in (caught.value.hint or "")
        with pytest.raises(XoromailError):  # and no fallback to plain text where TLS is required
            PostgresLedger(url.replace(str(front.port), str(postgres.port)), password=APP_PASSWORD)
    finally:
        front.close()
