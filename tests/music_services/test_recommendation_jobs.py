"""The recommendation worker's jobs against the fake Spotify, FerretDB, Redis and
user-graph-view: tastes, the index, recommendations both ways, dismissals, follows, and the
rq worker end to end with the HTTP service."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rhime import blocking, events
from rhime.graph import edges
from rhime.recommendation import app as rec_app
from rhime.recommendation import consumers, jobs, store, worker
from rhime.recommendation.settings import Settings, WorkerSettings
from rhime.runtime import servers
from rhime.spotify import app as spotify_app
from rhime.spotify.settings import Settings as SpotifySettings
from tests.music_services.music_helpers import connect, listeners, oid, service_headers
from tests.support import auth_headers, eventually, published, sample


@pytest.fixture
async def spotify(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    port = servers.free_port()
    settings = music_settings(
        SpotifySettings, component="spotify", public_url=f"http://127.0.0.1:{port}"
    )
    served = await serve(spotify_app.create(settings), port=port)
    async with httpx.AsyncClient(base_url=served.url) as client:
        yield client, served.app.state.kit


@pytest.fixture
async def res(music_settings: Callable[..., Any]) -> AsyncIterator[jobs.Resources]:
    async with jobs.resources(music_settings(WorkerSettings)) as resources:
        yield resources


async def connected_users(client: httpx.AsyncClient, picks: list[int]) -> list[str]:
    users = []
    for listener in picks:
        user = oid()
        assert (await connect(client, user, listener=listener)).headers["location"] == "/"
        users.append(user)
    return users


async def recs_of(db: Any, user: str) -> dict[str, dict[str, Any]]:
    return {d["otherId"]: d async for d in db[store.RECOMMENDATIONS].find({"userId": user})}


async def snapshot(db: Any) -> dict[str, list[Any]]:
    out = {}
    for name in (store.TASTES, store.POSTINGS, store.STATS, store.RECOMMENDATIONS):
        docs = [d async for d in db[name].find({}, {"fetchedAt": 0, "computedAt": 0})]
        out[name] = sorted(docs, key=lambda d: str(d["_id"]))
    return out


async def test_sync_builds_tastes_index_and_recommendations_both_ways(
    spotify: tuple[httpx.AsyncClient, Any], res: jobs.Resources
) -> None:
    client, _ = spotify
    same = await connected_users(client, listeners(2, 4))
    other = await connected_users(client, listeners(6, 2))
    for user in [*same, *other]:
        assert await jobs.sync_user(res, user_id=user, time_range="medium_term") is not None
    db = res.db

    taste = await db[store.TASTES].find_one({"_id": same[0]})
    assert taste["timeRange"] == "medium_term"
    assert taste["raw"]["tracks"]
    assert taste["raw"]["genres"]  # genres back-filled or from top artists
    assert await db[store.POSTINGS].count_documents({"userId": same[0]}) == len(taste["keys"])

    mine = await recs_of(db, same[0])
    assert set(same[1:]) <= set(mine)
    best = max(mine.values(), key=lambda d: d["similarity"])
    assert best["otherId"] in same
    for other_id, doc in mine.items():
        back = await db[store.RECOMMENDATIONS].find_one({"_id": f"{other_id}:{same[0]}"})
        assert back is not None
        assert back["similarity"] == pytest.approx(doc["similarity"])
        assert doc["dismissed"] is False
    why = best["explanation"]
    assert why["commonArtists"] or why["commonGenres"]
    assert all(item["name"] for item in why["commonArtists"])
    assert set(why["breakdown"]) == {"tracks", "artists", "genres"}


async def test_jobs_are_idempotent(
    spotify: tuple[httpx.AsyncClient, Any], res: jobs.Resources
) -> None:
    client, _ = spotify
    users = await connected_users(client, listeners(4, 3))
    # the first round grows the population, which changes IDF weights once
    for _ in range(2):
        for user in users:
            await jobs.sync_user(res, user_id=user, time_range="medium_term")
    first = await snapshot(res.db)
    for user in [*users, *users]:
        await jobs.sync_user(res, user_id=user, time_range="medium_term")
    assert await snapshot(res.db) == first
    assert first[store.RECOMMENDATIONS]


async def test_dismissed_stays_dismissed_and_followed_are_not_recommended(
    spotify: tuple[httpx.AsyncClient, Any],
    res: jobs.Resources,
    graph_view: tuple[str, Any],
) -> None:
    client, _ = spotify
    alice, bob, carol, dave = await connected_users(client, listeners(1, 4))
    for user in (alice, bob, carol, dave):
        await jobs.sync_user(res, user_id=user, time_range="medium_term")
    assert {bob, carol, dave} <= set(await recs_of(res.db, alice))

    await res.db[store.RECOMMENDATIONS].update_one(
        {"_id": f"{alice}:{bob}"}, {"$set": {"dismissed": True}}
    )
    await edges.transition(graph_view[1], follower=alice, followee=carol, active=True)
    # recomputation from either side
    await jobs.sync_user(res, user_id=bob, time_range="short_term")
    await jobs.sync_user(res, user_id=alice, time_range="short_term")
    mine = await recs_of(res.db, alice)
    assert mine[bob]["dismissed"] is True
    assert carol not in mine
    assert mine[dave]["dismissed"] is False


async def test_fetch_retries_spotify_429_and_5xx(
    spotify: tuple[httpx.AsyncClient, Any], res: jobs.Resources, fake: httpx.AsyncClient
) -> None:
    client, _ = spotify
    (user,) = await connected_users(client, [11])
    await fake.post("/_fake/faults", json={"status": 429, "count": 2, "retry_after": 1})
    await fake.post("/_fake/faults", json={"status": 500, "count": 2})
    assert await jobs.sync_user(res, user_id=user, time_range="medium_term") is not None
    assert (await fake.get("/_fake/stats")).json()["faults"] == []
    assert await res.db[store.TASTES].count_documents({"_id": user}) == 1


async def test_disconnected_user_is_forgotten(
    spotify: tuple[httpx.AsyncClient, Any], res: jobs.Resources
) -> None:
    client, _ = spotify
    alice, bob = await connected_users(client, listeners(3, 2))
    for user in (alice, bob):
        await jobs.sync_user(res, user_id=user, time_range="medium_term")
    assert await res.db[store.POSTINGS].count_documents({"userId": bob}) > 0
    r = await client.delete("/api/spotify/connection", headers=auth_headers(bob))
    assert r.status_code == 204
    assert await res.db[store.TASTES].count_documents({"_id": bob}) == 0
    assert await res.db[store.POSTINGS].count_documents({"userId": bob}) == 0
    assert await res.db[store.RECOMMENDATIONS].count_documents({"userId": bob}) == 0
    assert await jobs.sync_user(res, user_id=bob, time_range="short_term") is None


async def test_initial_job_is_deduplicated(music_settings: Callable[..., Any]) -> None:
    settings = music_settings(WorkerSettings)
    conn = jobs.connection(settings)
    try:
        assert jobs.enqueue_initial(conn, settings=settings, user_id="u1")
        assert not jobs.enqueue_initial(conn, settings=settings, user_id="u1")
        assert jobs.enqueue_initial(conn, settings=settings, user_id="u2")
        assert jobs.queue(settings, conn).count == 2
    finally:
        conn.close()


async def test_the_worker_reports_job_durations_and_queue_depth(
    music_settings: Callable[..., Any], serve: Any
) -> None:
    """On the worker's own /metrics: each job's duration by function and outcome, and the
    queue's depth per state (a retry waiting is `scheduled`, a job given up on `failed`)."""
    settings = music_settings(WorkerSettings, queue_watch_seconds=0.1)
    conn = jobs.connection(settings)
    try:
        assert jobs.enqueue_initial(conn, settings=settings, user_id=oid())  # not connected
        q = jobs.queue(settings, conn)
        q.enqueue("rhime.recommendation.jobs.refresh_batch", "2026-W01", None)  # raises
        q.enqueue_in(datetime.timedelta(hours=1), "rhime.recommendation.jobs.initial_fetch", "x")
        served = await serve(worker.create(settings))
        async with httpx.AsyncClient(base_url=served.url) as client:

            async def reported() -> None:
                scraped = (await client.get("/metrics")).text

                def value(name: str, **labels: str) -> float | None:
                    return sample(scraped, name, **labels)

                jobs_seconds = "rhime_job_seconds_count"
                assert value(jobs_seconds, job="initial_fetch", outcome="ok") == 1
                assert value(jobs_seconds, job="refresh_batch", outcome="failed") == 1
                depth = {
                    state: value("rhime_job_queue_depth", queue="music", state=state)
                    for state in ("queued", "scheduled", "started", "failed")
                }
                assert depth == {"queued": 0, "scheduled": 1, "started": 0, "failed": 1}

            await eventually(reported)
    finally:
        conn.close()


async def test_worker_and_service_end_to_end(
    spotify: tuple[httpx.AsyncClient, Any],
    music_settings: Callable[..., Any],
    serve: Any,
    graph_view: tuple[str, Any],
) -> None:
    client, kit = spotify
    await serve(worker.create(music_settings(WorkerSettings)))
    service = await serve(rec_app.create(music_settings(Settings, page_size=2)))
    users = await connected_users(client, listeners(5, 5))
    me = users[0]

    async def computed() -> dict[str, Any]:
        found = await recs_of(kit.database, me)
        assert set(users[1:]) <= set(found)
        return found

    await eventually(computed, timeout=60)
    async with httpx.AsyncClient(base_url=service.url) as rec:
        seen: list[dict[str, Any]] = []
        cursor = None
        for _ in range(10):
            params = {"cursor": cursor} if cursor else {}
            r = await rec.get("/api/recommendations", params=params, headers=auth_headers(me))
            assert r.status_code == 200, r.text
            page = r.json()
            assert len(page["recommendations"]) <= 2
            seen += page["recommendations"]
            cursor = page["next"]
            if cursor is None:
                break
        ids = [r["userId"] for r in seen]
        assert len(ids) == len(set(ids))
        assert set(users[1:]) <= set(ids)
        sims = [r["similarity"] for r in seen]
        assert sims == sorted(sims, reverse=True)
        assert all(r["percent"] == round(r["similarity"] * 100) for r in seen)
        assert seen[0]["explanation"]["commonArtists"] or seen[0]["explanation"]["commonGenres"]

        # dismiss one, follow another: both disappear, at once
        r = await rec.post(f"/api/recommendations/{users[1]}/dismiss", headers=auth_headers(me))
        assert r.status_code == 204
        r = await rec.post(f"/api/recommendations/{users[1]}/dismiss", headers=auth_headers(me))
        assert r.status_code == 204
        await edges.transition(graph_view[1], follower=me, followee=users[2], active=True)
        ids = []
        cursor = None
        for _ in range(10):
            params = {"cursor": cursor} if cursor else {}
            page = (
                await rec.get("/api/recommendations", params=params, headers=auth_headers(me))
            ).json()
            ids += [r["userId"] for r in page["recommendations"]]
            cursor = page["next"]
            if cursor is None:
                break
        assert users[1] not in ids
        assert users[2] not in ids
        assert set(users[3:]) <= set(ids)

        r = await rec.get(
            "/api/recommendations", params={"cursor": "%%%"}, headers=auth_headers(me)
        )
        assert r.status_code == 400
        r = await rec.post(f"/api/recommendations/{me}/dismiss", headers=auth_headers(me))
        assert r.status_code == 400
        r = await rec.get("/api/recommendations")
        assert r.status_code == 401

    # top items, with names, through the spotify service
    r = await client.get(f"/api/spotify/users/{me}/top/artists", headers=auth_headers(users[1]))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items[0]["name"]
    assert [i["weight"] for i in items] == sorted((i["weight"] for i in items), reverse=True)
    r = await client.get(f"/api/spotify/users/{me}/top/genres", headers=auth_headers(me))
    assert r.json()["items"]
    r = await client.get(f"/api/spotify/users/{oid()}/top/tracks", headers=auth_headers(me))
    assert r.status_code == 404
    r = await client.get(f"/api/spotify/users/{me}/top/albums", headers=auth_headers(me))
    assert r.status_code == 400


async def test_dismissing_someone_unknown_is_refused_and_writes_nothing(
    spotify: tuple[httpx.AsyncClient, Any], music_settings: Callable[..., Any], serve: Any
) -> None:
    client, kit = spotify
    service = await serve(rec_app.create(music_settings(Settings)))
    me, other = await connected_users(client, listeners(5, 2))
    recommendations = kit.database[store.RECOMMENDATIONS]
    async with httpx.AsyncClient(base_url=service.url) as rec:
        r = await rec.post(f"/api/recommendations/{oid()}/dismiss", headers=auth_headers(me))
        assert r.status_code == 404
        assert r.json() == {"errors": [{"msg": "The user cannot be found."}]}
        r = await rec.post("/api/recommendations/not-an-id/dismiss", headers=auth_headers(me))
        assert r.status_code == 400
        assert r.json() == {"errors": [{"msg": "Invalid userId", "field": "userId"}]}
        assert await recommendations.count_documents({"userId": me, "dismissed": True}) == 0
        # someone who connected Spotify can be dismissed before any recommendation is computed
        r = await rec.post(f"/api/recommendations/{other}/dismiss", headers=auth_headers(me))
        assert r.status_code == 204
        assert await recommendations.count_documents({"userId": me, "dismissed": True}) == 1


async def test_someone_followed_by_people_i_follow_outranks_an_equal_taste_stranger(
    spotify: tuple[httpx.AsyncClient, Any],
    res: jobs.Resources,
    graph_view: tuple[str, Any],
) -> None:
    client, _ = spotify
    me, friend, other = await connected_users(client, listeners(3, 3))
    # two people with the very same taste: one followed by someone I follow, one a stranger
    known, stranger = await connected_users(client, [listeners(5, 1)[0]] * 2)
    # the first round grows the population, which changes IDF weights once
    for _ in range(2):
        for user in (me, friend, other, known, stranger):
            await jobs.sync_user(res, user_id=user, time_range="medium_term")
    before = await recs_of(res.db, me)
    assert before[known]["similarity"] == pytest.approx(before[stranger]["similarity"])

    await edges.transition(graph_view[1], follower=me, followee=friend, active=True)
    await edges.transition(graph_view[1], follower=friend, followee=known, active=True)
    await jobs.sync_user(res, user_id=me, time_range="medium_term")
    mine = await recs_of(res.db, me)
    assert friend not in mine
    assert mine[known]["similarity"] > mine[stranger]["similarity"]
    assert mine[known]["taste"] == pytest.approx(mine[stranger]["taste"])
    assert mine[known]["explanation"]["mutualFollows"] == 1
    assert mine[known]["explanation"]["followedBy"] == [friend]
    assert mine[stranger]["explanation"]["mutualFollows"] == 0

    # the other side keeps taste alone, and its own graph part survives my recomputation
    back = await res.db[store.RECOMMENDATIONS].find_one({"_id": f"{known}:{me}"})
    assert back["similarity"] == pytest.approx(mine[known]["taste"])
    assert back["explanation"].get("mutualFollows", 0) == 0
    await edges.transition(graph_view[1], follower=known, followee=friend, active=True)
    await edges.transition(graph_view[1], follower=friend, followee=me, active=True)
    await jobs.sync_user(res, user_id=known, time_range="medium_term")
    await jobs.sync_user(res, user_id=me, time_range="medium_term")
    back = await res.db[store.RECOMMENDATIONS].find_one({"_id": f"{known}:{me}"})
    assert back["explanation"]["mutualFollows"] == 1
    assert back["similarity"] > back["taste"]


async def initial_job(res: jobs.Resources, user: str) -> None:
    assert await res.redis.exists(f"rq:job:initial-{user}")


async def test_a_deleted_account_is_forgotten_by_the_music_context(
    spotify: tuple[httpx.AsyncClient, Any],
    res: jobs.Resources,
    music_settings: Callable[..., Any],
    serve: Any,
) -> None:
    """`user.deleted` (twice), to the spotify service and the recommendation component:
    tokens, taste, postings, their recommendations and the others' about them, and their
    queued initial fetch go; nothing in the music database or rq's keys names them."""
    client, kit = spotify
    await serve(rec_app.create(music_settings(Settings, component="recommendation")))
    alice, bob, cy = await connected_users(client, listeners(3, 3))
    for user in (alice, bob, cy):
        await jobs.sync_user(res, user_id=user, time_range="medium_term")
    assert alice in await recs_of(res.db, bob)
    await eventually(lambda: initial_job(res, alice))
    deleted = events.UserDeleted(id=f"user.deleted:{alice}", user_id=alice)
    bus = kit.require_bus()
    for _ in range(2):
        await bus.js.publish(bus.subject(deleted.SUBJECT), deleted.model_dump_json().encode())

    async def forgotten() -> None:
        left = [
            f"{name} {doc['_id']}"
            for name in await res.db.list_collection_names()
            for doc in await res.db[name].find({}).to_list(None)
            if alice in repr(doc)
        ]
        left += [k async for k in res.redis.scan_iter(match="rq:*") if alice in str(k)]
        assert left == []

    await eventually(forgotten, timeout=20)
    assert bob in await recs_of(res.db, cy)
    r = await client.get(f"/internal/connected/{alice}", headers=service_headers())
    assert r.json() == {"connected": False}


async def drained(kit: Any, subject: str) -> None:
    """The recommendation component has handled and acked every `subject` event so far."""
    bus = kit.require_bus()
    stream = events.stream_name(kit.settings.namespace, events.noun(subject))
    durable = f"recommendation-{subject.replace('.', '-')}"
    info = await bus.js.consumer_info(stream, durable)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_a_connection_is_fetched_once_however_often_its_event_comes(
    spotify: tuple[httpx.AsyncClient, Any],
    res: jobs.Resources,
    music_settings: Callable[..., Any],
    serve: Any,
) -> None:
    """`user.authorized` comes at least once: while the first fetch is pending a repeat adds
    no job, and once the taste is fetched a repeat enqueues nothing; the next connection
    fetches again. A connection superseded by a later one is not fetched."""
    client, _ = spotify
    served = await serve(rec_app.create(music_settings(Settings, component="recommendation")))
    kit = served.app.state.kit
    queue = jobs.queue(res.settings, kit.resource(consumers.RQ))
    (alice,) = await connected_users(client, listeners(4, 1))
    await eventually(lambda: initial_job(res, alice))
    authorized = events.UserAuthorized(id=f"user.authorized:{alice}:1", user_id=alice, connection=1)

    async def deliver() -> None:
        bus = kit.require_bus()
        await bus.js.publish(bus.subject(authorized.SUBJECT), authorized.model_dump_json().encode())
        await eventually(lambda: drained(kit, authorized.SUBJECT))

    await deliver()
    assert queue.job_ids == [f"initial-{alice}"]
    # the worker runs it, and rq forgets it an hour later
    await jobs.sync_user(res, user_id=alice, time_range=jobs.INITIAL_RANGE)
    jobs.cancel_initial(kit.resource(consumers.RQ), user_id=alice)
    for _ in range(2):
        await deliver()
    assert queue.job_ids == []
    assert not await res.redis.exists(f"rq:job:initial-{alice}")

    assert (await connect(client, alice, listener=listeners(4, 1)[0])).status_code == 302
    await eventually(lambda: initial_job(res, alice))
    jobs.cancel_initial(kit.resource(consumers.RQ), user_id=alice)
    await deliver()  # connection 1's event, late: connection 2 is the current one
    assert queue.job_ids == []


async def test_people_apart_are_never_computed_for_each_other(
    spotify: tuple[httpx.AsyncClient, Any], res: jobs.Resources
) -> None:
    """Once the music context holds a block, neither side's computation pairs the two (in
    either direction); once lifted, the next computation does."""
    client, _ = spotify
    alice, bob, carol = await connected_users(client, listeners(1, 3))
    block = events.UserBlocked(id="b", blocker_id=bob, blocked_id=alice, version=1)
    await blocking.apply(res.db, block)
    for user in (alice, bob, carol):
        await jobs.sync_user(res, user_id=user, time_range="medium_term")
    assert set(await recs_of(res.db, alice)) == {carol}
    assert set(await recs_of(res.db, bob)) == {carol}
    lifted = events.UserUnblocked(id="u", blocker_id=bob, blocked_id=alice, version=2)
    await blocking.apply(res.db, lifted)
    await jobs.sync_user(res, user_id=bob, time_range="medium_term")
    assert alice in await recs_of(res.db, bob)
    assert bob in await recs_of(res.db, alice)


async def test_the_weekly_refresh_announces_people_new_to_someone_once(
    spotify: tuple[httpx.AsyncClient, Any],
    res: jobs.Resources,
    music_settings: Callable[..., Any],
    serve: Any,
) -> None:
    """A first computation records its top silently; a weekly refresh stages one
    `user.recommended` per person new among someone's top (never twice, never for a blocked
    pair), and the recommendation component publishes what is staged."""
    client, _ = spotify
    alice, bob = await connected_users(client, listeners(1, 2))
    for user in (alice, bob, alice):  # alice's own computation ranks bob: known to her
        await jobs.sync_user(res, user_id=user, time_range="medium_term")
    carol, dave = await connected_users(client, listeners(3, 2))
    await blocking.apply(
        res.db, events.UserBlocked(id="b", blocker_id=dave, blocked_id=alice, version=1)
    )
    for user in (carol, dave):
        await jobs.sync_user(res, user_id=user, time_range="medium_term")
    for _ in range(2):  # a batch retried: nothing new the second time
        await jobs.sync_user(res, user_id=alice, time_range="short_term", week="2026-W49")
    announced = res.db[store.ANNOUNCED]
    staged = [d async for d in announced.find({"userId": alice, "_outbox.0": {"$exists": True}})]
    assert [d["otherId"] for d in staged] == [carol]  # bob known already, dave apart
    assert await announced.find_one({"_id": f"{alice}:{dave}"}) is None
    assert await announced.find_one({"_id": f"{alice}:{bob}"}) is not None
    await serve(rec_app.create(music_settings(Settings)))
    [event] = await published(res.settings, "user.recommended", expect=1)
    assert (event["user_id"], event["other_id"], event["week"]) == (alice, carol, "2026-W49")

    async def relayed() -> None:
        assert await announced.count_documents({"_outbox.0": {"$exists": True}}) == 0

    await eventually(relayed)
    assert await announced.find_one({"_id": f"{alice}:{carol}"}) is not None  # remembered
