"""The resume store shared by every gateway instance, on Redis (``[resume] store = "redis"``).

Keys, all under ``tw:`` (``{key}`` is a stream's key, ``{instance}`` a random id per gateway process):

``tw:s:{key}`` (stream)
    The stream's events, one entry each, in the format of server.stores.mirror_codec.
    ``MAXLEN ~`` caps it at the most events a stream of ``max_stream_bytes`` can have.
``tw:m:{key}`` (hash)
    ``owner`` (instance), ``id`` (stream id), ``ended`` ("1" once the terminal event is mirrored).
``tw:i:{instance}`` (string)
    The instance's heartbeat: set with a TTL of ``heartbeat_ttl`` every ``beat_interval`` while the
    instance runs streams or reads remote ones.
``tw:leases`` (sorted set)
    Stream key -> lease expiry (ms on Redis's clock): the gateway-wide ``max_concurrent_streams``.
    Admission is one Lua script (drop expired, count, add); the owner renews its leases on every
    beat and removes one when its stream ends; a crashed instance's leases expire.
``tw:r:{key}`` (sorted set)
    Instance -> expiry (ms): the instances where a client reads the stream now, so the owner does
    not cancel it when its own client's grace period ends (``read_elsewhere``).
``tw:cancel:{instance}`` (pub/sub channel)
    Stream keys to cancel on that instance (``cancel`` publishes to the owner named in the meta).
``tw:chat:{chat id}`` (string)
    An AI SDK chat's active stream: JSON ``[stream key, message id]``, expiring after the stream
    timeout plus a margin (``active_chat`` checks that the stream has not ended).

The pump. One task per store, running while the store has a running stream or a remote one,
does all the Redis work of streams in one round trip per ``flush_interval`` (10 ms):

* Mirroring, off the hot path: every event that any of our streams appended since the last tick
  goes out in one Lua call (one XADD each, inside Redis), so the cost per event is a few
  microseconds of argument building, not a Redis command of its own; the stream's task never
  waits on Redis, and Redis being slow or gone never slows a stream. The pump reads
  ``log.entries`` and ``log.notices`` by index instead of subscribing: a Subscription would
  count as a reader (``EventLog.has_readers``, which decides whether a detached stream is
  cancelled after its grace period) and as a slow reader in the backpressure accounting
  (``EventLog.backlog``), and it merges chunks, while the mirror needs each seq on its own. The
  price is up to one tick before another instance can see an event.
* Relaying: one XREAD (not blocking) over the mirrors of every remote stream read here.
* Between ticks it waits on the cancel channel, so a cancel from elsewhere acts at once.
* Every ``beat_interval``: the heartbeat, lease renewal, reader registration, and the liveness
  check of remote streams that have been silent for ``lost_after``. A heartbeat found gone means
  Redis lost our keys (it restarted empty, or was flushed): every stream of ours is announced and
  mirrored again from its start.

Another instance resumes a stream as a ``RemoteStream``: a local EventLog filled from the
mirror (XRANGE from the start, so index == seq holds) and then by the pump. When it is silent for
``lost_after`` and its owner's heartbeat is gone, it ends with a retryable ``stream_lost`` error
instead of hanging: an owner's death shows 2-4 s after it (its heartbeat expires 2-3 s after its
last beat; the check runs every second once the stream has been silent for 2 s). A remote stream
that nobody reads for ``remote_idle`` is no longer followed (found again, it is read afresh).

An idle gateway has no task of the store: the pump returns when there is nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError

from server.config import Config, ConfigError
from server.stores.base import ENTRY_OVERHEAD, Source, stream_bytes
from server.stores.memory import MemoryStore
from server.stores.mirror_codec import MirrorEntry, encode_event, encode_notice
from server.stores.redis_remote import RemoteStream, apply_entry
from server.stores.redis_scripts import (
    ADMIT,
    BEAT,
    CANCEL,
    CHAT,
    ELSEWHERE,
    HEARTBEAT,
    LEASES,
    META,
    MIRROR,
    READERS,
    READING,
    STREAM,
)
from server.streams.eventlog import EventLog

log = logging.getLogger("tokenwire.resume")

T = TypeVar("T")
DOWN = (RedisError, OSError, TimeoutError)  # Redis gone, refusing, or slower than the budget

START_TIMEOUT = 5.0  # seconds to reach Redis at start-up
CLOSE_TIMEOUT = 1.0  # seconds for the last flush and clean-up at shutdown
TOO_BIG_LINGER_MS = 5000  # a stream over max_stream_bytes is kept this long after it ends
FLUSH_BUDGET = 5000  # events per tick at most (after an outage, the backlog goes out in slices)
READ_COUNT = 1000  # entries per remote stream per tick at most
_json = msgspec.json.Encoder()
UNREACHABLE_MESSAGE = "the store relaying the stream cannot be reached; start it again"


class RedisUnavailable(RuntimeError):
    """Redis could not be reached at start-up (the message names the URL without its password)."""


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds. The defaults suit production; tests shorten them."""

    flush_interval: float = 0.01  # the pump's tick
    beat_interval: float = 1.0
    heartbeat_ttl: float = 3.0
    lease_ttl: float = 10.0
    reader_ttl: float = 3.0
    lost_after: float = 2.0  # a remote stream's silence before its owner's heartbeat is checked
    remote_idle: float = 5.0  # a remote stream without readers this long stops being followed
    reader_linger: float = 0.2  # a remote stream found counts as read this long (its client subscribes)
    retry: float = 1.0  # after Redis failed, wait this long before using it again


def redact_url(url: str) -> str:
    """``url`` with its password (in the userinfo or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, host = netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            netloc = f"{user}:***@{host}"
        query = urlencode(
            [(k, "***" if "pass" in k.lower() else v) for k, v in parse_qsl(parts.query)], safe="*"
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparsable URL>"


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class _Mirror:
    """What of one running stream of ours has reached Redis."""

    __slots__ = ("announced", "ended_at", "next_seq", "notices", "stream")

    def __init__(self, stream: Source) -> None:
        self.stream = stream
        self.next_seq = 0  # events before it are in Redis
        self.notices = 0  # notices in Redis
        self.announced = False  # the meta is written
        self.ended_at: float | None = None  # loop time of ended(); its terminal is in the log


@dataclass(slots=True)
class _Plan:
    """What one tick sends of one mirror, and where the mirror stands once it is sent."""

    mirror: _Mirror
    events: list[MirrorEntry] = field(default_factory=list)
    whole: bool = False  # the events start from the ack: they replace what Redis has
    next_seq: int = 0
    notices: int = 0
    finishing: bool = False


class RedisStore:
    """A ``ResumeStore`` shared by every instance using the same Redis (see the module doc)."""

    remote = True

    def __init__(self, config: Config, *, timing: Timing | None = None) -> None:
        resume = config.resume
        self._resume = resume
        self._max_streams = config.streaming.max_concurrent_streams
        self._timing = timing or Timing()
        self.instance = secrets.token_hex(8)
        self._url = redact_url(resume.redis_url)
        self._password = urlsplit(resume.redis_url).password if "://" in resume.redis_url else None
        try:
            self._client = aioredis.from_url(
                resume.redis_url,
                socket_connect_timeout=START_TIMEOUT,
                socket_timeout=START_TIMEOUT,
                retry=Retry(NoBackoff(), 1),  # one immediate retry (a reconnect); never a long stall
                client_name=f"tokenwire-{self.instance}",
            )
        except ValueError as exc:
            raise ConfigError(f"config: `resume.redis_url`: {_scrub(str(exc), self._password)}") from None
        self._admit = self._client.register_script(ADMIT)
        self._beat_script = self._client.register_script(BEAT)
        self._reading_script = self._client.register_script(READING)
        self._elsewhere = self._client.register_script(ELSEWHERE)
        self._mirror = self._client.register_script(MIRROR)
        # Longest a running stream's keys may live: a crashed owner leaves no key behind for long.
        self._running_ttl_ms = int(
            (config.streaming.stream_timeout_seconds + resume.retention_seconds + 60) * 1000
        )
        self._chat_ttl_ms = int((config.streaming.stream_timeout_seconds + 60) * 1000)
        self._maxlen = resume.max_stream_bytes // ENTRY_OVERHEAD + 16
        self._local = MemoryStore(config)  # our running streams, and ended ones within retention
        self._mirrors: dict[str, _Mirror] = {}  # by key: our streams whose events are not all in Redis
        self._remote: dict[str, RemoteStream] = {}  # by key: remote streams followed here
        self._reading: set[str] = set()  # keys of the streams this instance is registered as reading
        self._pubsub: PubSub | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # short errands: cancels sent, scripts reloaded
        self._failed_at: float | None = None  # loop time of the last Redis failure, while failing
        self._closed = False

    # ---- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            async with asyncio.timeout(START_TIMEOUT * 2):
                await self._client.ping()
                await self._load_scripts()
                self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(CANCEL + self.instance)
        except DOWN as exc:
            await self._shut(release=False)
            detail = _scrub(f"{type(exc).__name__}: {exc}", self._password)
            raise RedisUnavailable(f"resume store: cannot reach Redis at {self._url} ({detail})") from None
        log.info("resume store: Redis at %s, instance %s", self._url, self.instance)

    async def close(self) -> None:
        """Send what is left (the terminal events of streams shut down just before) and release
        our leases and heartbeat, for at most CLOSE_TIMEOUT, then close the connections."""
        await self._shut(release=True)

    async def abort(self) -> None:
        """Stop as a crashed process would: nothing more reaches Redis (leases and heartbeat
        are left to expire). For tests of a dying instance."""
        await self._shut(release=False)

    async def _shut(self, *, release: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._remote.clear()
        for task in self._tasks:
            task.cancel()
        pump = self._pump_task
        if pump is not None and not pump.done():
            if release and self._mirrors:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pump), CLOSE_TIMEOUT)
            pump.cancel()
        await asyncio.gather(*self._tasks, *([pump] if pump else []), return_exceptions=True)
        if release:
            with contextlib.suppress(*DOWN):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    pipe = self._client.pipeline(transaction=False)
                    pipe.delete(HEARTBEAT + self.instance)
                    if self._mirrors:
                        pipe.zrem(LEASES, *self._mirrors)
                    for key in self._reading:
                        pipe.zrem(READERS + key, self.instance)
                    await pipe.execute()
        with contextlib.suppress(RedisError, OSError):
            if self._pubsub is not None:
                await self._pubsub.aclose()
            await self._client.aclose()
        self._mirrors.clear()
        await self._local.close()

    async def _load_scripts(self) -> None:
        """Load the scripts sent by SHA in pipelines (Redis forgets them when it restarts)."""
        for script in (self._mirror, self._reading_script):
            script.sha = await self._client.script_load(script.script)

    async def _reload_scripts(self) -> None:
        try:
            await self._load_scripts()
        except RedisError as exc:
            self._failed(exc)

    # ---- admission -------------------------------------------------------------------------

    async def admit(self, key: str) -> bool:
        if not self._failing():
            try:
                lease_ms = int(self._timing.lease_ttl * 1000)
                admitted = await self._bounded(
                    self._admit(
                        keys=[LEASES, META + key],
                        args=[self._max_streams, key, lease_ms, self.instance, self._running_ttl_ms],
                    )
                )
                self._recovered()
                return bool(admitted)
            except DOWN as exc:
                self._failed(exc)
        # Redis is gone or hangs: this instance's own running streams against the limit.
        return sum(m.ended_at is None for m in self._mirrors.values()) < self._max_streams

    # ---- our streams -----------------------------------------------------------------------

    def started(self, stream: Source) -> None:
        self._local.started(stream)
        self._mirrors[stream.key] = _Mirror(stream)
        self._ensure_pump()

    def ended(self, stream: Source) -> None:
        self._local.ended(stream)
        mirror = self._mirrors.get(stream.key)
        if mirror is not None and mirror.stream is stream:
            mirror.ended_at = asyncio.get_running_loop().time()

    # ---- finding, cancelling ---------------------------------------------------------------

    async def find(self, key: str) -> Source | None:
        local = await self._local.find(key)
        if local is not None:
            return local
        remote = self._remote.get(key)
        if remote is not None:
            remote.wanted = asyncio.get_running_loop().time()
            return remote
        if self._closed or self._failing():
            return None
        try:
            loaded = await self._load(key)
            self._recovered()
        except DOWN as exc:
            self._failed(exc)
            return None
        remote = self._remote.get(key)  # another find of the same key may have loaded it meanwhile
        if remote is not None or loaded is None:
            return remote or loaded
        if not loaded.ended and not self._closed:
            self._remote[key] = loaded
            self._reading.add(key)  # _load registered it
            self._ensure_pump()
        return loaded

    async def cancel(self, key: str) -> bool:
        if await self._local.cancel(key):
            return True
        if self._closed or self._failing():
            return False
        try:
            meta: list[Any] = await self._bounded(self._client.hmget(META + key, ["owner", "ended"]))
            owner, ended = meta
            receivers = 0
            if owner is not None and ended is None:
                receivers = await self._bounded(self._client.publish(CANCEL + owner.decode(), key))
            self._recovered()
        except DOWN as exc:
            self._failed(exc)
            return False
        return bool(receivers)

    def cancel_soon(self, key: str) -> None:
        """``cancel``, from synchronous code (RemoteStream.cancel)."""
        if not self._closed:
            self._spawn(self.cancel(key))

    async def read_elsewhere(self, key: str) -> bool:
        if self._closed or self._failing():
            return False
        try:
            elsewhere = await self._bounded(self._elsewhere(keys=[READERS + key], args=[self.instance]))
            self._recovered()
        except DOWN as exc:
            self._failed(exc)
            return False
        return bool(elsewhere)

    # ---- AI SDK chats ----------------------------------------------------------------------

    async def bind_chat(self, chat_id: str, key: str, message_id: str) -> None:
        self._local.bind_local(chat_id, key, message_id)  # what answers while Redis fails
        if self._closed or self._failing():
            return
        try:
            binding = _json.encode([key, message_id])
            await self._bounded(self._client.set(CHAT + chat_id, binding, px=self._chat_ttl_ms))
            self._recovered()
        except DOWN as exc:
            self._failed(exc)

    async def active_chat(self, chat_id: str) -> tuple[Source, str] | None:
        if self._closed or self._failing():
            return await self._local.active_chat(chat_id)
        try:
            binding = await self._bounded(self._client.get(CHAT + chat_id))
            self._recovered()
        except DOWN as exc:
            self._failed(exc)
            return await self._local.active_chat(chat_id)
        if binding is None:
            return None
        try:
            key, message_id = msgspec.json.decode(binding, type=tuple[str, str])
        except msgspec.DecodeError:
            return None  # not ours: never a crash
        source = await self.find(key)
        return None if source is None or source.ended else (source, message_id)

    async def _load(self, key: str) -> RemoteStream | None:
        """The stream of ``key`` from its mirror, complete from seq 0 (None: not there, or not whole)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hget(META + key, "owner")
        pipe.xrange(STREAM + key)
        # The caller is about to read it: say so at once, before the owner's grace may end.
        _evalsha(
            pipe, self._reading_script, [READERS + key], [self.instance, int(self._timing.reader_ttl * 1000)]
        )
        owner, items, registered = await self._bounded(pipe.execute(raise_on_error=False))
        if isinstance(registered, NoScriptError):
            await self._bounded(self._load_scripts())
        for result in (owner, items):
            if isinstance(result, Exception):
                raise result
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timing.lost_after
        while owner is not None and not items and loop.time() < deadline:
            # Admitted, not mirrored yet: its owner's first tick can come late when it is busy
            # (its client may resume here the moment it has the ack). Wait as long as a running
            # stream may stay silent.
            await asyncio.sleep(self._timing.flush_interval)
            items = await self._bounded(self._client.xrange(STREAM + key))
        if owner is None or not items:
            return None
        events = EventLog()
        for entry_id, fields in items:
            if not apply_entry(events, entry_id, fields):
                return None
        remote = RemoteStream(self.cancel_soon, key, owner.decode(), events, items[-1][0])
        if not remote.ended and not await self._bounded(self._client.exists(HEARTBEAT + remote.owner)):
            remote.lose()
        return remote

    async def _bounded(self, call: Awaitable[T]) -> T:
        """``call``, given up (TimeoutError) after ``redis_timeout_seconds``: a client's start,
        resume or cancel never waits longer on a Redis that hangs (the socket's own timeout, for
        the pump, is seconds)."""
        async with asyncio.timeout(self._resume.redis_timeout_seconds):
            return await call

    # ---- Redis health ----------------------------------------------------------------------

    def _failing(self) -> bool:
        """Redis failed less than ``retry`` seconds ago: do not wait on it again yet."""
        failed = self._failed_at
        return failed is not None and asyncio.get_running_loop().time() - failed < self._timing.retry

    def _failed(self, exc: BaseException) -> None:
        if self._failed_at is None:
            detail = _scrub(str(exc), self._password) or "no answer in time"
            log.warning(
                "resume store: Redis at %s failed (%s: %s); streams run on here, but other "
                "instances cannot resume them",
                self._url,
                type(exc).__name__,
                detail,
            )
        self._failed_at = asyncio.get_running_loop().time()

    def _recovered(self) -> None:
        if self._failed_at is not None:
            self._failed_at = None
            log.warning("resume store: Redis at %s answers again", self._url)

    # ---- the pump --------------------------------------------------------------------------

    def _ensure_pump(self) -> None:
        if self._closed or (self._pump_task is not None and not self._pump_task.done()):
            return
        self._pump_task = asyncio.get_running_loop().create_task(self._pump(), name="redis-pump")

    async def _pump(self) -> None:
        t = self._timing
        loop = asyncio.get_running_loop()
        beat_due = 0.0
        task = asyncio.current_task()
        assert task is not None
        # A cancel that lands as a Redis call completes can be swallowed inside redis-py; the task
        # stays marked, and a pump that ran on would keep beating for an instance that is gone.
        while (self._mirrors or self._remote) and not task.cancelling():
            try:
                now = loop.time()
                if now >= beat_due:
                    await self._beat(now)
                    beat_due = now + t.beat_interval
                await self._tick(now)
                await self._take_cancels(t.flush_interval)  # also the wait between ticks
                self._recovered()
            except (RedisError, OSError) as exc:
                self._failed(exc)
                self._give_up(loop.time())
                beat_due = 0.0
                await asyncio.sleep(t.retry)
            except Exception:  # never let the pump die: mirroring stops, streams must not
                log.exception("resume store: the Redis pump failed")
                await asyncio.sleep(t.retry)

    async def _beat(self, now: float) -> None:
        """Heartbeat, leases, reader registrations; and the fate of remote streams nobody reads
        or that went quiet."""
        t = self._timing
        quiet: list[RemoteStream] = []
        for key, remote in list(self._remote.items()):
            if not remote.log.has_readers and now - remote.wanted >= t.remote_idle:
                del self._remote[key]  # nobody reads it: stop following it
            elif now - remote.heard >= t.lost_after:
                quiet.append(remote)
        if quiet:
            pipe = self._client.pipeline(transaction=False)
            for remote in quiet:
                pipe.exists(HEARTBEAT + remote.owner)
                pipe.exists(STREAM + remote.key)
            results = await pipe.execute()
            for i, remote in enumerate(quiet):
                if not (results[2 * i] and results[2 * i + 1]):  # its owner stopped beating, or no mirror
                    remote.lose()
                    self._drop_remote(remote)
        leased = [key for key, m in self._mirrors.items() if m.ended_at is None]
        readers = [READERS + key for key in self._reading]
        ttls = [int(t.heartbeat_ttl * 1000), int(t.lease_ttl * 1000), int(t.reader_ttl * 1000)]
        had_heartbeat = await self._beat_script(
            keys=[HEARTBEAT + self.instance, LEASES, *readers], args=[self.instance, *ttls, *leased]
        )
        if not had_heartbeat:
            self._mirror_again()

    def _mirror_again(self) -> None:
        """Redis lost our keys (restarted empty, flushed), or may have: announce and mirror our
        streams again from their start, or no other instance finds them (their leases and reader
        registrations were just renewed by the beat)."""
        lost = [mirror for mirror in self._mirrors.values() if mirror.announced]
        if lost:
            log.warning("resume store: our heartbeat was gone; mirroring %d streams again", len(lost))
        for mirror in lost:
            mirror.next_seq = mirror.notices = 0
            mirror.announced = False

    async def _tick(self, now: float) -> None:
        """One round trip: every event our streams appended since the last tick, every new entry
        of the remote streams followed here, and the streams that got or lost their readers here."""
        pipe = self._client.pipeline(transaction=False)
        plans = self._plans()
        if plans:
            self._queue(pipe, plans)
        mirrored = len(pipe)
        if self._remote:
            pipe.xread({STREAM + key: r.last_id for key, r in self._remote.items()}, count=READ_COUNT)
        relayed = len(pipe)
        self._queue_readers(pipe, now)
        if not len(pipe):
            return
        results = await pipe.execute(raise_on_error=False)
        if self._mirrored(results[:mirrored]):
            self._commit(plans)
        if relayed > mirrored:  # not `self._remote`: a find may have added one while we waited
            self._relay(results[mirrored])
        self._mirrored(results[relayed:])

    def _queue_readers(self, pipe: Pipeline, now: float) -> None:
        """Register this instance as reading a stream as soon as a client reads it here, and
        unregister it as soon as none does. The hub asks ``read_elsewhere`` once, when a grace
        period ends: a registration left over from a client that has just gone would keep the
        stream running with nobody to cancel it later, so it must not outlive its readers."""
        reading = self._reading
        now_reading: set[str] = set()
        for key, mirror in self._mirrors.items():
            if mirror.ended_at is None and mirror.stream.log.has_readers:
                now_reading.add(key)
        linger = self._timing.reader_linger
        for key, remote in self._remote.items():
            if remote.log.has_readers:
                remote.wanted = now
            if now - remote.wanted < linger:  # found for a client about to read it, or read now
                now_reading.add(key)
        if now_reading == reading:
            return
        ttl_ms = int(self._timing.reader_ttl * 1000)
        for key in now_reading - reading:
            _evalsha(pipe, self._reading_script, [READERS + key], [self.instance, ttl_ms])
        for key in reading - now_reading:
            pipe.zrem(READERS + key, self.instance)
        self._reading = now_reading

    def _plans(self) -> list[_Plan]:
        plans: list[_Plan] = []
        budget = FLUSH_BUDGET
        for mirror in self._mirrors.values():
            if budget <= 0:
                break
            plan = self._plan(mirror, budget)
            if plan is not None:
                plans.append(plan)
                budget -= len(plan.events)
        return plans

    def _plan(self, mirror: _Mirror, budget: int) -> _Plan | None:
        """``mirror``'s events not in Redis yet (at most ``budget``), or None if it is all there."""
        events = mirror.stream.log
        entries, notices = events.entries, events.notices
        seq, sent = mirror.next_seq, mirror.notices
        finished = mirror.ended_at is not None
        if seq == len(entries) and sent == len(notices) and not finished:
            return None
        plan = _Plan(mirror)
        out = plan.events
        if seq == 0 and entries:
            out.append(encode_event(0, entries[0]))  # the ack
            seq, plan.whole = 1, True
        while sent < len(notices):  # they come only between the ack and the first chunk
            sent += 1
            out.append(encode_notice(sent, notices[sent - 1]))
        end = min(len(entries), seq + max(budget - len(out), 0))
        out.extend(encode_event(i, entries[i]) for i in range(seq, end))
        plan.next_seq, plan.notices = end, sent
        plan.finishing = finished and end == len(entries)
        return plan

    def _queue(self, pipe: Pipeline, plans: list[_Plan]) -> None:
        keys: list[str] = []
        args: list[str | bytes | int] = [self._maxlen]
        for plan in plans:
            stream = plan.mirror.stream
            if not plan.mirror.announced:
                pipe.hset(META + stream.key, mapping={"owner": self.instance, "id": stream.id})
            if plan.events:
                keys.append(STREAM + stream.key)
                args += [len(plan.events), int(plan.whole)]
                for event in plan.events:
                    args.extend(event)
        if keys:
            _evalsha(pipe, self._mirror, keys, args)
        retention_ms = int(self._resume.retention_seconds * 1000)
        for plan in plans:
            stream = plan.mirror.stream
            skey, mkey = STREAM + stream.key, META + stream.key
            if not plan.mirror.announced:
                pipe.pexpire(skey, self._running_ttl_ms)
                pipe.pexpire(mkey, self._running_ttl_ms)
            if plan.finishing:
                keep_ms = retention_ms
                if stream_bytes(stream.log) > self._resume.max_stream_bytes:
                    keep_ms = min(keep_ms, TOO_BIG_LINGER_MS)  # for readers still catching up
                pipe.hset(mkey, "ended", "1")
                if keep_ms > 0:
                    pipe.pexpire(skey, keep_ms)
                    pipe.pexpire(mkey, keep_ms)
                else:
                    pipe.delete(skey, mkey)
                pipe.zrem(LEASES, stream.key)

    def _mirrored(self, results: list[Any]) -> bool:
        """Whether the mirror's part of a tick went through (else it is sent again next tick)."""
        ok = True
        for result in results:
            if isinstance(result, NoScriptError):  # Redis restarted: load the script, send again
                self._spawn(self._reload_scripts())
                ok = False
            elif isinstance(result, ResponseError):
                log.warning("resume store: Redis refused a write: %s", result)
            elif isinstance(result, list) and len(result) == 2 and result[0]:
                log.warning("resume store: Redis refused %d events: %s", result[0], result[1])
        return ok

    def _commit(self, plans: list[_Plan]) -> None:
        for plan in plans:
            mirror = plan.mirror
            mirror.next_seq, mirror.notices, mirror.announced = plan.next_seq, plan.notices, True
            key = mirror.stream.key
            if plan.finishing and self._mirrors.get(key) is mirror:
                del self._mirrors[key]

    def _relay(self, reply: Any) -> None:
        """Append what the tick's XREAD brought to the remote streams."""
        if isinstance(reply, Exception):
            raise reply
        if not reply:
            return
        now = asyncio.get_running_loop().time()
        for name, items in reply.items() if isinstance(reply, dict) else reply:
            remote = self._remote.get(name.decode().removeprefix(STREAM))
            if remote is None or not items:
                continue
            remote.heard = now
            remote.take(items)
            if remote.ended:
                self._drop_remote(remote)

    def _drop_remote(self, remote: RemoteStream) -> None:
        if self._remote.get(remote.key) is remote:
            del self._remote[remote.key]

    def _give_up(self, now: float) -> None:
        """Redis failed: remote streams silent too long are lost; ended streams of ours whose
        retention is over need not reach it any more."""
        for remote in list(self._remote.values()):
            if now - remote.heard >= self._timing.lost_after:
                remote.lose(UNREACHABLE_MESSAGE)
                self._drop_remote(remote)
        self._reading = set()  # registered again from the next tick on
        retention = self._resume.retention_seconds
        for key, mirror in list(self._mirrors.items()):
            if mirror.ended_at is not None and now - mirror.ended_at > retention:
                del self._mirrors[key]

    async def _take_cancels(self, timeout: float) -> None:
        """Wait up to ``timeout`` for cancels addressed to us; act on all that came."""
        assert self._pubsub is not None
        message = await self._pubsub.get_message(timeout=timeout)
        while message is not None:
            if message.get("type") == "message":
                mirror = self._mirrors.get(message["data"].decode())
                if mirror is not None:
                    mirror.stream.cancel()
            message = await self._pubsub.get_message(timeout=0)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work, name="redis-store")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _evalsha(pipe: Pipeline, script: AsyncScript, keys: list[str], args: list[Any]) -> None:
    """Queue ``script`` by its SHA (loaded at start): ``await script(client=pipe)`` would make the
    pipeline check that every script exists, a round trip more on every tick."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)
