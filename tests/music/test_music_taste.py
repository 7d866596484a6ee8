from rhime.music.taste import EMPTY, TopArtist, TopTrack, original_profile, ranked_profile

ARTISTS = [
    TopArtist(id="a1", name="One", genres=("indie", "folk")),
    TopArtist(id="a2", name="Two", genres=("folk",)),
]
TRACKS = [
    TopTrack(id="t1", name="First", artist_ids=("a1",)),
    TopTrack(id="t2", name="Second", artist_ids=("a1", "a3")),
    TopTrack(id="t3", name="Third", artist_ids=("a3",)),
]


def test_original_weighting_worked_example() -> None:
    profile = original_profile(tracks=TRACKS, artists=ARTISTS, genres_by_artist={"a3": ("jazz",)})

    assert profile.tracks == {"t1": 3, "t2": 3, "t3": 3}
    # a1: top artist 8 + two tracks; a2: top artist, no tracks; a3: only on tracks, starts at 0
    assert profile.artists == {"a1": 14, "a2": 8, "a3": 6}
    # genre = sum of the weights of every artist listing it
    assert profile.genres == {"indie": 14, "folk": 22, "jazz": 6}


def test_original_artist_seen_only_on_tracks_has_no_genres_without_backfill() -> None:
    profile = original_profile(tracks=TRACKS, artists=ARTISTS)

    assert profile.artists["a3"] == 6
    assert "jazz" not in profile.genres
    assert profile.genres == {"indie": 14, "folk": 22}


def test_top_artist_genres_win_over_backfill_and_duplicates_count_once() -> None:
    profile = original_profile(
        tracks=[TopTrack(id="t1", name="x", artist_ids=("a1", "a1")), TRACKS[0]],
        artists=[*ARTISTS, ARTISTS[0]],
        genres_by_artist={"a1": ("other",)},
    )

    assert profile.tracks == {"t1": 3}
    assert profile.artists == {"a1": 11, "a2": 8}
    assert "other" not in profile.genres


def test_ranked_profile_favours_higher_ranks_and_splits_genres() -> None:
    profile = ranked_profile(tracks=TRACKS, artists=ARTISTS)

    assert profile.tracks["t1"] > profile.tracks["t2"] > profile.tracks["t3"]
    assert profile.tracks["t1"] == 3
    a1 = profile.artists["a1"]
    assert a1 == 8 + profile.tracks["t1"] + profile.tracks["t2"]
    # a1 has two genres, so each gets half of its weight
    assert profile.genres["indie"] == a1 / 2
    assert profile.genres["folk"] == a1 / 2 + profile.artists["a2"]


def test_empty_input_gives_empty_profile() -> None:
    assert original_profile(tracks=[], artists=[]) == EMPTY
    assert ranked_profile(tracks=[], artists=[]).is_empty()
