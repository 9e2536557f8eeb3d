"""`--connections N`: one batch over N connections, each running the Sender's own per-message logic.

Every worker thread is a copy of one Sender with its own transport and its own ledger connection (SQLite in
WAL mode takes one writer at a time; each commit is short and waits its turn through the busy timeout). Rows
are handed out one at a time from a shared source, so each goes out on exactly one connection and its ledger
row is written by that connection. A connection that cannot be (re)opened hands back the rows it holds to
the others. Results are reported in row order, as a single connection reports them; the pacing limiter and
the daily-quota watch are shared, so `--rate` is a total.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from xoromail_cli.errors import ExitCode, StageFailedError, XoromailError
from xoromail_cli.sending.batch import InvalidRow, SendJob
from xoromail_cli.sending.results import MessageResult, Summary
from xoromail_cli.sending.rows import Item, batch_items, stop_error, unexpected
from xoromail_cli.sending.sender import Sender

if TYPE_CHECKING:
    from collections.abc import Iterator

    from xoromail_cli.ledger.sqlite import SentLedger as Ledger
    from xoromail_cli.services.base import SecretStore, Transport

_FINISHED = XoromailError("every row was handed out")


class SharedRows:
    """The batch's items for several workers: each taken once, held until its result, handed back if the
    worker's connection fails. A worker with nothing in hand waits while others still hold rows they may hand
    back; one that looks ahead (holding a row already) never waits, so two workers cannot wait on each other."""

    def __init__(self, items: Iterable[Item]) -> None:
        self._items: Iterator[tuple[int, Item]] = enumerate(items)
        self._returned: list[tuple[int, Item]] = []
        self._held: dict[int, dict[int, Item]] = {}
        self._exhausted = False
        self._changed = threading.Condition()
        self.stopped: XoromailError | None = None
        self.lost: list[XoromailError] = []
        self.crashed: BaseException | None = None

    def view(self, worker: int) -> _WorkerRows:
        with self._changed:
            self._held[worker] = {}
        return _WorkerRows(self, worker)

    def take(self, worker: int, wait: bool) -> tuple[int, Item] | None:
        with self._changed:
            while self.stopped is None:
                taken = self._next()
                if taken is not None:
                    self._held[worker][taken[0]] = taken[1]
                    return taken
                others = any(rows for holder, rows in self._held.items() if holder != worker)
                if not wait or self._held[worker] or not others:
                    return None
                self._changed.wait()
            return None

    def _next(self) -> tuple[int, Item] | None:
        if self._returned:
            self._returned.sort(key=lambda taken: taken[0])
            return self._returned.pop(0)
        if not self._exhausted:
            taken = next(self._items, None)
            if taken is not None:
                return taken
            self._exhausted = True
        return None

    def done(self, worker: int, place: int) -> None:
        with self._changed:
            self._held[worker].pop(place, None)
            self._changed.notify_all()

    def lose(self, worker: int, error: XoromailError) -> None:
        """A worker's connection failed for good: its rows go back; the batch stops only with the last worker."""
        with self._changed:
            self._returned += self._held.pop(worker).items()
            self.lost.append(error)
            if not self._held and self.stopped is None:
                self.stopped = error
            self._changed.notify_all()

    def leave(self, worker: int) -> None:
        with self._changed:
            self._returned += self._held.pop(worker, {}).items()
            self._changed.notify_all()

    def stop(self, error: XoromailError) -> None:
        with self._changed:
            if self.stopped is None:
                self.stopped = error
            self._changed.notify_all()


class _WorkerRows:
    """One worker's view of the shared rows (a `sending.JobSource`)."""

    def __init__(self, rows: SharedRows, worker: int) -> None:
        self._rows, self._worker = rows, worker

    def take(self, wait: bool = True) -> tuple[int, Item] | None:
        return self._rows.take(self._worker, wait)

    def halted(self) -> bool:
        return self._rows.stopped is not None


class InRowOrder:
    """Passes results on in row order, whichever connection finished first."""

    def __init__(self, emit: Callable[[MessageResult], None]) -> None:
        self._emit = emit
        self._next = 0
        self._waiting: dict[int, MessageResult] = {}
        self._lock = threading.Lock()

    def put(self, place: int, result: MessageResult) -> None:
        with self._lock:
            self._waiting[place] = result
            while self._next in self._waiting:
                self._emit(self._waiting.pop(self._next))
                self._next += 1

    def flush(self) -> None:
        """At the end: results behind a row that was never sent (the batch stopped) still come out, in order."""
        with self._lock:
            for place in sorted(self._waiting):
                self._emit(self._waiting.pop(place))


def run_parallel(base: Sender, transports: Sequence[Transport], open_ledger: Callable[[], Ledger] | None,
                 jobs: Iterable[SendJob | InvalidRow], invalid_first: Sequence[InvalidRow] = (),
                 on_warning: Callable[[str], None] = lambda text: None, total: int | None = None) -> Summary:
    """Send `jobs` over one worker per transport. `base` is the Sender each worker copies (its ledger is the
    main one, used for the report of interrupted messages); `open_ledger` opens a worker's own connection."""
    summary, emit = base.begin_run(invalid_first, total)
    rows = SharedRows(batch_items(base.event, jobs, invalid_first))
    ordered = InRowOrder(emit)
    signed_in = threading.Event()  # the others connect once the first has signed in: a wrong password fails once
    threads = [threading.Thread(target=_work, args=(base, transport, open_ledger, rows.view(index), rows, index,
                                                     ordered, signed_in), name=f"xoromail-connection-{index + 1}",
                                daemon=True)
               for index, transport in enumerate(transports)]
    for thread in threads:
        thread.start()
    interrupted = _wait_for(threads, rows, ordered, base.profile.timeout)
    if rows.crashed is not None and not isinstance(rows.crashed, Exception):
        raise rows.crashed
    if rows.crashed is not None:  # a bug in a worker: every worker stopped; the summary still says what went
        summary.aborted = unexpected(rows.crashed)
    elif interrupted is not None:
        summary.aborted = interrupted
    elif rows.stopped is not _FINISHED:
        summary.aborted = rows.stopped
    for error in rows.lost:
        if error is not rows.stopped:
            on_warning(f"one connection stopped ({error.message}); its rows went to the other connections")
    return summary


def _wait_for(threads: list[threading.Thread], rows: SharedRows, ordered: InRowOrder,
              timeout: float) -> XoromailError | None:
    """Wait for every worker, taking signals meanwhile; returns the interruption (Ctrl-C, SIGTERM) if one came.
    After a signal the workers finish the message in hand and take no more; every result still comes out."""
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.25)  # a bounded join lets the main thread take signals
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the summary says so (130, 143)
        from xoromail_cli.interrupts import interruption

        return interruption(stop, "send")
    finally:
        rows.stop(_FINISHED)
        for thread in threads:
            thread.join(timeout)
        ordered.flush()
    return None


def _work(base: Sender, transport: Transport, open_ledger: Callable[[], Ledger] | None, view: _WorkerRows,
          rows: SharedRows, index: int, ordered: InRowOrder, signed_in: threading.Event) -> None:
    """One connection: the Sender's own loop over the rows it takes. Connection 1 goes first; the others wait
    until it has signed in (or given up), so a refused password or certificate stops the batch after one try."""
    ledger = None
    sender = None

    def emit(place: int, result: MessageResult) -> None:
        ordered.put(place, result)
        rows.done(index, place)

    try:
        if index:
            signed_in.wait()
        ledger = open_ledger() if open_ledger is not None else None
        sender = base.on_connection(transport, ledger, on_open=signed_in.set if index == 0 else None)
        stopper = sender.send_each(view, emit)
        if stopper is not None:
            rows.stop(stop_error(stopper))
    except BaseException as error:  # noqa: BLE001  # a bug is recorded too: every worker stops, the main thread raises it
        _stopped_by(rows, index, error)
    finally:
        if index == 0:
            signed_in.set()
        rows.leave(index)
        if sender is not None:
            sender.close()
        if ledger is not None:
            ledger.close()


def _stopped_by(rows: SharedRows, index: int, error: BaseException) -> None:
    """What a worker's failure means for the batch: a connection throttled or refused for now hands its rows
    to the others; any other error stops the batch; anything else is a bug, raised by the main thread."""
    if isinstance(error, StageFailedError) and error.exit_code == ExitCode.TEMPFAIL:
        rows.lose(index, error)  # throttled or too many connections: the others carry on
    elif isinstance(error, XoromailError):
        rows.stop(error)
    else:
        rows.crashed = error
        rows.stop(_FINISHED)


class RememberedSecrets:
    """One look-up per secret for all connections (a password_command runs once, not once per connection)."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store
        self._values: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def get(self, kind: str) -> str | None:
        with self._lock:
            if kind not in self._values:
                self._values[kind] = self._store.get(kind)
            return self._values[kind]

    def set(self, kind: str, value: str) -> None:
        with self._lock:
            self._values[kind] = value
            self._store.set(kind, value)

    def delete(self, kind: str) -> None:
        with self._lock:
            self._values.pop(kind, None)
            self._store.delete(kind)
