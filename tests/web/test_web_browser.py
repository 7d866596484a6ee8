"""The journey in a real browser, by clicking: sign up, connect Spotify, follow someone from a
recommendation, post, like, comment, upload a picture, sign out. Every screen is saved at
phone and desktop widths under test-output/screenshots/."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rhime.runtime import local
from tests.conftest import local_platform
from tests.web import web_site as ws

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not ws.CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)"
    ),
]

DESKTOP = {"width": 1280, "height": 900}
# An <img> that the browser fetched and decoded has a width.
LOADED = "i => i.complete ? i.naturalWidth : 0"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def own_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.Platform]:
    """A platform of its own: on the shared one, the people other tests made crowd the seeded
    person out of the newcomer's recommendations."""
    yield from local_platform(tmp_path_factory)


@pytest.fixture(scope="module")
def site(own_platform: local.Platform) -> str:
    platform = own_platform
    ws.point_web_at_gateway(platform)
    ws.wait_http(platform.gateway_url + "/signin")
    # The Spotify callback comes back to the public URL: the cookie's host must match it.
    return platform.process("web").env.get("RHIME_PUBLIC_URL", platform.gateway_url)


@pytest.fixture(scope="module")
def shots(repo: Path) -> Path:
    folder = repo / "test-output" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def page(site: str) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(ws.CHROMIUM), args=ws.CHROMIUM_ARGS)
        context = await browser.new_context(viewport=DESKTOP, base_url=site)
        tab = await context.new_page()
        # The pages' security policy must never block something of ours (a script, a style).
        refused: list[str] = []
        tab.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        try:
            yield tab
        finally:
            await context.close()
            await browser.close()
        assert refused == []


async def shoot(page: Any, folder: Path, name: str) -> None:
    """The screen at both widths; the page reflows without a reload."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        # From the top, so the sticky header sits where it belongs in the full-page image.
        await page.evaluate("window.scrollTo(0, 0)")
        # Nothing sticks out sideways: the page fits the screen at every width.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{name} is {width}px wide at {label} width"
        await page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


async def test_journey(page: Any, site: str, shots: Path) -> None:
    expect = playwright_api.expect
    seed = ws.Person(site, ws.unique("bo"))
    try:
        await seed.join()
        await seed.share("the", "The song of my summer")
        name = ws.unique("ana")

        # Sign up, with live hints and an inline server error first.
        await page.goto("/signup")
        await page.get_by_label("Username").fill(seed.name)
        await page.get_by_label("Email").fill(f"{name}@example.com")
        await page.get_by_label("Password").fill("short")
        await expect(page.locator('[data-hints-for="password"] li.unmet').first).to_be_visible()
        await page.get_by_label("Password").fill(ws.PASSWORD)
        await expect(page.locator('[data-hints-for="password"] li.unmet')).to_have_count(0)
        await page.get_by_role("button", name="Sign up").click()
        await expect(page.locator(".error, .alert").first).to_be_visible()
        await shoot(page, shots, "signup-error")
        await page.get_by_label("Username").fill(name)
        await page.get_by_label("Password").fill(ws.PASSWORD)
        await page.get_by_role("button", name="Sign up").click()

        # Connect Spotify: the round trip lands home, signed in.
        await expect(page).to_have_url(re.compile(r"/connect-spotify$"))
        await shoot(page, shots, "connect-spotify")
        await page.get_by_role("link", name="Connect with Spotify").click()
        await expect(page).to_have_url(re.compile(r"/$"))
        await expect(page.get_by_role("heading", name="Recommend a track")).to_be_visible()
        await shoot(page, shots, "home-empty")

        # Connect: wait for the recommendations to be computed, then follow the seeded person
        # (anyone else the platform recommends first is dismissed with "Not now").
        await page.get_by_role("link", name="Connect", exact=True).click()
        seed_href = f"/users/{seed.user_id}"

        async def seed_shown() -> bool:
            name = page.locator("#rec-name a")
            if not await name.count():
                await page.reload()
                return False
            shown = await name.get_attribute("href")
            if shown == seed_href:
                return True
            await page.locator("form[data-rec-action] button", has_text="Not now").click()
            await expect(page.locator(f'#rec-name a[href="{shown}"]')).to_have_count(0)
            return False

        await ws.eventually(seed_shown, timeout=120, every=1)
        await expect(page.locator(".similarity .big")).to_have_text(re.compile(r"^\d+%$"))
        # who they are, as far as the card can say: counts, and their own top music
        await expect(page.locator(".rec-facts")).to_contain_text("1 post")
        for heading in ("Their top artists", "Their top tracks"):
            section = page.locator(".common section", has=page.get_by_role("heading", name=heading))
            await expect(section.locator(".chips li").first).to_be_visible()
        await shoot(page, shots, "connect")
        await page.locator("form[data-rec-action] button", has_text="Follow").click()
        await expect(page.get_by_role("status")).to_contain_text("Followed")
        # Followed people leave the stack: the card now shows someone else or the empty state.
        await expect(page.locator(f'#rec-name a[href="{seed_href}"]')).to_have_count(0)
        await shoot(page, shots, "connect-after-follow")

        # Post: search a track, choose it and share it with a caption.
        await page.get_by_role("link", name="Home").click()
        await page.get_by_label("Search tracks").fill("the")
        await expect(page.locator("#track-results input[type=radio]").first).to_be_checked()
        await page.get_by_label("Why this track?").fill("Found it through Rhime")
        await page.get_by_role("button", name="Post", exact=True).click()
        mine = page.locator(".post", has_text="Found it through Rhime").first
        await expect(mine).to_be_visible()

        # Like: instant, then confirmed by the server's fragment replacing the form.
        old_like = await mine.locator("form[data-like]").element_handle()
        await mine.locator("form[data-like] button").click()
        await old_like.wait_for_element_state("hidden")
        await expect(mine.locator("form[data-like] button")).to_have_attribute(
            "aria-pressed", "true"
        )
        await expect(mine.locator("[data-count]")).to_have_text("1")
        await expect(mine.locator("form[data-like] input[name=liked]")).to_have_value("0")

        # Comment inline, newest first, deletable because it is mine.
        await mine.locator("details.comments > summary").click()
        box = mine.get_by_label("Add a comment")
        await box.fill("Great bass line")
        await mine.get_by_role("button", name="Send").click()
        await expect(mine.locator(".comment-text").first).to_have_text("Great bass line")
        await expect(mine.locator("[data-comment-count]")).to_have_text("1")
        await expect(mine.locator("[data-comment-word]")).to_have_text("comment")
        await expect(mine.get_by_role("button", name="Delete your comment")).to_be_visible()

        # Like the comment (the like API takes comment ids too); the state is the server's.
        comment = mine.locator(".comment").first
        await comment.get_by_role("button", name=re.compile("Like comment")).click()
        await expect(comment.locator("form[data-like] button")).to_have_attribute(
            "aria-pressed", "true"
        )
        await expect(comment.locator("[data-count]")).to_have_text("1")
        await expect(comment.locator("form[data-like] input[name=liked]")).to_have_value("0")
        await shoot(page, shots, "home")
        await page.reload()
        await mine.locator("details.comments > summary").click()
        liked = comment.locator("form[data-like] button")
        await expect(liked).to_have_attribute("aria-pressed", "true")
        await liked.click()
        await expect(comment.locator("form[data-like] input[name=liked]")).to_have_value("1")
        await expect(liked).to_have_attribute("aria-pressed", "false")
        await expect(comment.locator("[data-count]")).to_have_text("0")

        # Notifications: the one I followed follows back; the bell shows it without a reload
        # (the poll also runs whenever the tab becomes visible), and its page says who.
        profile_href = await page.get_by_role("link", name="Profile").get_attribute("href")
        assert profile_href
        await seed.call("PUT", f"/api/graph/following/{profile_href.rsplit('/', 1)[1]}")
        bell = page.locator("a.bell .bell-count")

        async def bell_rang() -> bool:
            await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            return await bell.is_visible() and await bell.text_content() == "1"

        await ws.eventually(bell_rang, timeout=30, every=0.5)
        await shoot(page, shots, "home-bell")
        await page.locator("a.bell").click()
        await expect(page).to_have_url(re.compile(r"/notifications$"))
        await expect(page.locator(".notice.unread")).to_contain_text("started following you")
        await expect(bell).to_be_hidden()
        await shoot(page, shots, "notifications")
        await page.get_by_role("link", name="Home").click()

        # Delete a post of mine: it leaves the page at once, and the timeline for good.
        await page.get_by_label("Search tracks").fill("the")
        await expect(page.locator("#track-results input[type=radio]").first).to_be_checked()
        await page.get_by_label("Why this track?").fill("Posted by mistake")
        await page.get_by_role("button", name="Post", exact=True).click()
        doomed = page.locator(".post", has_text="Posted by mistake")
        await expect(doomed).to_be_visible()
        await doomed.get_by_text("More").click()
        await shoot(page, shots, "home-delete-post")
        await doomed.get_by_role("button", name=re.compile("Delete post")).click()
        await expect(doomed).to_have_count(0)

        async def gone_for_good() -> bool:
            await page.reload()
            await expect(mine).to_be_visible()
            return await doomed.count() == 0

        await ws.eventually(gone_for_good, timeout=10, every=0.3)

        # The followed person's profile shows their post and a Following button.
        await page.goto(seed_href)
        await expect(page.get_by_role("button", name=re.compile("Following"))).to_be_visible()
        await expect(page.locator(".post", has_text="The song of my summer")).to_be_visible()
        await shoot(page, shots, "profile-other")
        await page.get_by_role("tab", name="Top artists").click()
        await expect(page.locator(".top-list li").first).to_be_visible()
        # with the artists' pictures, as Spotify has them
        portrait = page.locator(".top-list img.artist-picture").first
        await ws.eventually(lambda: portrait.evaluate(LOADED), timeout=10, every=0.2)
        await shoot(page, shots, "profile-artists")

        # Edit the profile: the API's rules come back inline, then the change shows.
        await page.get_by_role("link", name="Profile").click()
        await expect(page.locator(".profile-top img.avatar")).to_have_count(0)
        await page.get_by_role("link", name="Edit profile").click()
        await page.get_by_label("First name").fill("A")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("#firstName-error")).to_be_visible()
        await shoot(page, shots, "profile-edit-error")
        await page.get_by_label("First name").fill("Marisol")
        await page.get_by_label("Bio").fill("Synths and long drives")
        await page.get_by_role("spinbutton", name=re.compile("^Age")).fill("34")
        await page.get_by_label("Gender").select_option("female")
        await shoot(page, shots, "profile-edit")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("#profile-name")).to_contain_text(
            re.compile("marisol", re.IGNORECASE)
        )
        await expect(page.locator(".profile-top .bio")).to_have_text("Synths and long drives")
        await expect(page.locator(".profile-top .facts")).to_have_text("Age 34 · Female")

        # Upload a 4 MB picture: straight from the browser to the image store (the gateway
        # takes no body that large), then confirmed; it is served back.
        await page.get_by_role("link", name="Edit profile").click()
        await page.get_by_label("Choose an image").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "image/png", "buffer": b"not a picture"}]
        )
        await page.get_by_role("button", name="Upload picture").click()
        await expect(page.locator("#image-error")).to_have_text("Use a JPEG, PNG or WebP image.")
        big = ws.png(1200, 1120, noise=True)
        assert 4_000_000 < len(big) < 5_000_000
        await page.get_by_label("Choose an image").set_input_files(
            files=[{"name": "me.png", "mimeType": "image/png", "buffer": big}]
        )
        await page.get_by_role("button", name="Upload picture").click()
        picture = page.locator(".profile-top img.avatar")
        await expect(picture).to_have_attribute(
            "src", re.compile(r"/[0-9a-f]{24}/[0-9a-f]+\.png$"), timeout=30_000
        )
        await ws.eventually(lambda: picture.evaluate(LOADED), timeout=30, every=0.2)
        assert await picture.evaluate(LOADED) == 1200
        stored = await picture.get_attribute("src")
        async with aiohttp.ClientSession() as http, http.get(stored) as response:
            assert await response.read() == big
        await shoot(page, shots, "profile-own")

        # Disconnect Spotify: the gate shuts at once, and connecting again reopens it.
        await page.get_by_role("link", name="Edit profile").click()
        await page.get_by_role("button", name="Disconnect Spotify").click()
        await expect(page).to_have_url(re.compile(r"/connect-spotify\?disconnected=1$"))
        await expect(page.get_by_role("status")).to_contain_text("Spotify is disconnected")
        await shoot(page, shots, "connect-spotify-disconnected")
        for screen in ("/", "/connect", "/settings/profile"):
            await page.goto(screen)
            await expect(page).to_have_url(re.compile(r"/connect-spotify$"))
        await page.get_by_role("link", name="Connect with Spotify").click()
        await expect(page).to_have_url(re.compile(r"/$"))
        await expect(page.get_by_role("heading", name="Recommend a track")).to_be_visible()

        # Not found, then sign out: pages send signed-out people to sign in.
        await page.goto("/no/such/page")
        await expect(page.get_by_role("heading", name="This page is not here")).to_be_visible()
        await shoot(page, shots, "not-found")
        await page.goto("/")
        await page.get_by_role("button", name=re.compile("Sign out")).click()
        await expect(page).to_have_url(re.compile(r"/signin$"))
        await shoot(page, shots, "signin")
        await page.goto("/connect")
        await expect(page).to_have_url(re.compile(r"/signin\?next=/connect$"))
    finally:
        await seed.close()


def letters(text: str) -> str:
    """Letters only (names take nothing else), as unique as the text."""
    return "".join(chr(ord("a") + int(c, 16)) for c in text)


async def test_find_people_and_change_password(page: Any, site: str, shots: Path) -> None:
    expect = playwright_api.expect
    seed = ws.Person(site, ws.unique("zoe"))
    me = ws.Person(site, ws.unique("me"))
    try:
        await seed.join()
        await me.join()
        first = "Quen" + letters(seed.name[-6:])

        async def named() -> bool:
            try:
                await seed.call(
                    "PATCH",
                    f"/api/users/{seed.user_id}",
                    json={"firstName": first, "lastName": "Okafor"},
                )
            except AssertionError:  # the profile follows user.created
                return False
            return True

        await ws.eventually(named, timeout=30, every=0.3)

        # Signed in here; `me` keeps another session open through the API.
        await page.goto("/signin")
        await page.get_by_label("Username or email").fill(me.name)
        await page.get_by_label("Password").fill(ws.PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Recommend a track")).to_be_visible()

        # Find people from the header: case and accents do not matter, a word is enough.
        box = page.get_by_role("searchbox", name="Find people")
        await box.fill("QUÉN" + first[4:7].upper())
        await box.press("Enter")
        await expect(page).to_have_url(re.compile(r"/search\?q="))
        found = page.locator(".person", has_text=f"@{seed.name}")
        await expect(found).to_contain_text(f"{first} Okafor")
        await shoot(page, shots, "search-people")
        await page.get_by_role("searchbox", name="Find people").fill(f"@{seed.name}")
        await page.get_by_role("button", name="Search", exact=True).click()
        await expect(page.locator(".person")).to_have_count(1)
        await page.get_by_role("link", name=re.compile(f"@{seed.name}")).click()
        await expect(page).to_have_url(re.compile(f"/users/{seed.user_id}$"))
        await page.get_by_role("searchbox", name="Find people").fill("zzzzzzqqqqqq")
        await page.get_by_role("button", name="Search", exact=True).click()
        await expect(page.get_by_text("Nobody goes by that name")).to_be_visible()

        # Change the password: a wrong current one is refused, then this browser carries on
        # while every other session is signed out.
        new = "Fresh!tune77"
        await page.goto("/settings/profile")
        await page.get_by_label("Current password").fill("not!mine99")
        await page.get_by_label("New password").fill(new)
        await page.get_by_role("button", name="Change password").click()
        await expect(page.locator(".alert")).to_contain_text("password is incorrect")
        await shoot(page, shots, "settings-password-error")
        await page.get_by_label("Current password").fill(ws.PASSWORD)
        await page.get_by_label("New password").fill(new)
        await page.get_by_role("button", name="Change password").click()
        await expect(page).to_have_url(re.compile(r"/settings/profile\?password=changed$"))
        await expect(page.get_by_role("status")).to_contain_text("Password changed")
        await shoot(page, shots, "settings-password-changed")
        await page.goto("/")
        await expect(page.get_by_role("heading", name="Recommend a track")).to_be_visible()
        async with me.http.get(site + "/api/auth/me") as response:
            assert response.status == 401

        # The old password no longer signs in; the new one does.
        await page.get_by_role("button", name=re.compile("Sign out")).click()
        await page.get_by_label("Username or email").fill(me.name)
        await page.get_by_label("Password").fill(ws.PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator(".alert, .error").first).to_contain_text("incorrect")
        await page.get_by_label("Password").fill(new)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Recommend a track")).to_be_visible()
    finally:
        await seed.close()
        await me.close()


async def test_block_from_a_profile_and_unblock_from_settings(
    page: Any, site: str, shots: Path
) -> None:
    expect = playwright_api.expect
    other = ws.Person(site, ws.unique("kai"))
    me = ws.Person(site, ws.unique("me"))
    try:
        await other.join()
        await me.join()
        await other.share("a", "from kai")
        await page.goto("/signin")
        await page.get_by_label("Username or email").fill(me.name)
        await page.get_by_label("Password").fill(ws.PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Recommend a track")).to_be_visible()

        await page.goto(f"/users/{other.user_id}")
        await page.get_by_role("button", name="Follow", exact=True).click()
        await expect(page.get_by_role("button", name=re.compile("^Following"))).to_be_visible()
        await expect(page.get_by_text("from kai")).to_be_visible()
        await page.get_by_role("button", name="Block", exact=True).click()
        await expect(page).to_have_url(re.compile(f"/users/{other.user_id}$"))
        await expect(page.get_by_role("button", name=re.compile("^Blocked"))).to_be_visible()
        await expect(page.get_by_role("status")).to_contain_text("You block")
        await expect(page.locator("[data-follow]")).to_have_count(0)
        await expect(page.locator("[data-followers]")).to_have_text("0")

        async def unseen() -> bool:
            await page.reload()
            return await page.get_by_text("from kai").count() == 0

        await ws.eventually(unseen, timeout=30, every=0.5)
        await shoot(page, shots, "profile-blocked")

        await page.goto("/settings/profile")
        listed = page.locator(".blocked-list li", has_text=f"@{other.name}")
        await expect(listed).to_have_count(1)
        await shoot(page, shots, "settings-blocked")
        await listed.get_by_role("button", name=re.compile("^Unblock")).click()
        await expect(page).to_have_url(re.compile(r"/settings/profile$"))
        await expect(page.get_by_text("You block no one")).to_be_visible()
        await page.goto(f"/users/{other.user_id}")
        await expect(page.get_by_role("button", name="Block", exact=True)).to_be_visible()
        await expect(page.get_by_role("button", name="Follow", exact=True)).to_be_visible()
    finally:
        await other.close()
        await me.close()


async def test_download_my_data_and_delete_my_account(page: Any, site: str, shots: Path) -> None:
    expect = playwright_api.expect
    me = ws.Person(site, ws.unique("cy"))
    try:
        await me.join()
        await me.share("the", "Before I go")
        await page.goto("/signin")
        await page.get_by_label("Username or email").fill(me.name)
        await page.get_by_label("Password").fill(ws.PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(r"/$"))
        await page.goto("/settings/profile")

        # The download is one JSON file of everything, saved by the browser.
        async with page.expect_download() as started:
            await page.get_by_role("link", name="Download my data").click()
        download = await started.value
        assert download.suggested_filename == f"rhime-{me.name}.json"
        saved = Path(await download.path())
        archive = json.loads(await asyncio.to_thread(saved.read_text))
        assert archive["account"]["userName"] == me.name
        assert [p["caption"] for p in archive["posts"]] == ["Before I go"]

        # Deleting asks for the password; a wrong one is said next to the field.
        await page.get_by_label("Your password, to confirm").fill("not!mine123")
        await page.get_by_role("button", name="Delete my account").click()
        await expect(page.locator("#deletePassword-error")).to_have_text(
            "The password is incorrect."
        )
        await shoot(page, shots, "delete-account-error")
        await page.get_by_label("Your password, to confirm").fill(ws.PASSWORD)
        await page.get_by_role("button", name="Delete my account").click()
        await expect(page).to_have_url(re.compile(r"/signin\?deleted=1$"))
        await expect(page.get_by_role("status")).to_contain_text("Your account is deleted")
        await shoot(page, shots, "account-deleted")

        # Signed out, and the account cannot be signed in to again.
        await page.goto("/settings/profile")
        await expect(page).to_have_url(re.compile(r"/signin\?next="))
        await page.get_by_label("Username or email").fill(me.name)
        await page.get_by_label("Password").fill(ws.PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator(".alert")).to_contain_text("incorrect")
    finally:
        await me.close()
