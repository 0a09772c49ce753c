"""What makes a synthetic query unlike anything a listener would type, as rules with a name each.

Read as queries, episode titles and description sentences are full of feed furniture: "(emails sent to this address
will get no direct response)", "5P FRI ON THE GO 12_22_17", "Ep 17 - Bricks & Burglaries". A model trained to find an
episode from those learns show names and numbering, not topics. `tidy` strips the numbering a title carries around
its topic ("Ep 17 - Bricks & Burglaries" -> "Bricks & Burglaries"); `reject_reason` names what is still wrong with a
query, and the filter in base.py counts every rejection by that name in the querygen stats.
"""
from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from podsearch.retrieval.bm25 import STOPWORDS

REASONS = ("boilerplate", "date", "episode_number", "show_name", "low_content")

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# bm25s's English list lacks words like "from", "about", "what"; scikit-learn's (installed with
# sentence-transformers) has them.
STOPWORD_SET = frozenset(STOPWORDS) | ENGLISH_STOP_WORDS
URL_OR_EMAIL = re.compile(
    r"(?:https?://|www\.)\S+|\S+@\S+\.\w+|\b[\w-]+\.(?:com|org|net|co|fm|io|ly|gl|me|tv)\b(?:/\S*)?", re.I)
# Calls to action, contact lines, sponsor reads and feed notices, in the languages of the sample.
_BOILERPLATE = re.compile(
    r"\b(?:subscribe|subscribing|unsubscribe|itunes|apple podcasts|stitcher|spotify|soundcloud|patreon|"
    r"rate (?:and|&) review|leave (?:us )?a review|review us|follow (?:us|me)|like us|twitter|facebook|instagram|"
    r"youtube|email us|e-mail|emails? sent|contact us|call (?:us|in)|promo code|"
    r"coupon code|discount code|use code|support (?:the|this) (?:show|podcast)|donate|download (?:the|our)|"
    r"listen (?:live|on|at)|visit (?:us|our)|check out (?:our|my)|click here|all rights reserved|copyright|"
    r"abonnieren|abonniert|suscr[ií]bete|abonnez|abonneer|"
    # social networks and podcast hosts, sign-offs and airtime ("available for free", "listen weekdays")
    r"linkedin|tiktok|snapchat|pinterest|tumblr|reddit|google play|podbean|libsyn|tunein|iheart(?:radio)?|"
    r"available (?:for free|now|on)|for free|free download|weekdays|weeknights|best of|"
    # feed templates and broadcast slots: SermonAudio's "Broadcaster: ... Length: 63 min. (64kbps)", Spanish and
    # Catalan radio's "Tramo de 08.50 h a 09.00 h", "Emis.: Dimarts 12-12-2017"
    r"broadcaster|sermonaudio|mp3|kbps|tramo|emis|emisi[oó]n|emissió|"
    r"download(?:s|ed)?|uploaded|share (?:this|it)|flickr|shutterstock|appeared first on)\b", re.I)
HANDLE = re.compile(r"(?<!\w)[@#][^\W\d_][\w.]*")  # @handles and #hashtags (not "#12", which is numbering)
# Credits inside a text, up to the end of their sentence (or bracket); in a query they are boilerplate. Sponsor
# credits ("60 Second Jukebox For Nick-Brought To You By Newicks Lobster", "powered by ZenCast.fm"), photo credits
# ("Image credit: Gage Skidmore/Flickr", "(Photo: Ryan Remiorz/The Canadian Press)"), "watch and share this new
# video", WordPress's "The post <title> appeared first on <site>", who preached and where it was recorded, sign-offs.
# Generators that cut phrases out of a text cut these out first (`without_furniture`): a sponsor's, photographer's
# or site's name alone ("unh athletics", "ryan remiorz", "muscle appeared") passes every rule on the query.
FURNITURE = re.compile(
    r"[(\[]\s*(?:photos?|images?|pictures?)\s*(?:credit|courtesy|by)?s?\s*:[^)\]]*[)\]]"
    r"|\b(?:brought to you by|sponsored by|presented by|powered by|in partnership with|watch and share|"
    r"(?:image|photo|picture)s? (?:credit|courtesy)s?|the post\b.{0,300}?\bappeared first on|"
    # "Preached by Pastor Katie Ricke at Beresford Zion UMC": the feed's venue, in both of its episodes
    r"preached by|recorded (?:live )?at|"
    # sign-offs and greetings, WordPress's ad label and category footer ("Advertisements Filed under: ... Tagged:")
    r"thanks?(?: you)? (?:so much )?for listening|happy holidays|season'?s greetings|advertisements|filed under)"
    r"[^.!?|\n]*"
    # SermonAudio's template fields: "... following details: Title: ... Speaker: ... Broadcaster: ..." -- a field's
    # label ends the phrase before it ("defense speaker" is not a phrase of the text)
    r"|\b(?:title|subtitle|speaker|broadcaster|event|bible|length|overview):", re.I)
# SoundCloud-style items described only as "<title> by <author>": the author is the show's, not the episode's.
_AUTHOR_CREDIT = re.compile(r"\s*by\s+[^.!?]{1,100}")
_MONTH = (r"(?:jan(?:uary|uar)?|feb(?:ruary|ruar)?|mar(?:ch)?|märz|apr(?:il)?|may|mai|jun(?:e|i)?|jul(?:y|i)?|"
          r"aug(?:ust)?|sep(?:t|tember)?|oct(?:ober)?|okt(?:ober)?|nov(?:ember)?|dec(?:ember)?|dez(?:ember)?)")
# A month's or weekday's full name, even without a day: in a feed of one month, "questions for december" and
# "thursdays" are dates, not topics. (Not "may", more often a word.)
_DAY_OR_MONTH_NAME = (r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?|"
               r"montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lunes|martes|miércoles|jueves|viernes|"
               r"sábado|domingo|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|"
               r"january|february|march|april|june|july|august|september|october|november|december|januar|februar|juni|"
               r"juli|oktober|dezember|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|"
               r"noviembre|diciembre|janvier|février|avril|juin|juillet|août|septembre|octobre|novembre|décembre|"
               r"gennaio|febbraio|aprile|giugno|luglio|settembre|ottobre|dicembre|janeiro|fevereiro|março|junho|"
               r"julho|setembro|outubro|novembro|dezembro|januari|februari|augustus")
# Abbreviated: "5P FRI ON THE GO", "Schroer on Dec", "switch in feb". Not "sun", "mar", "may", "mon", "jan", "jun":
# words or names as often.
_DAY_OR_MONTH_SHORT = r"(?:tue|tues|wed|thu|thur|thurs|fri|sat|feb|apr|jul|aug|sep|sept|oct|nov|dec)"
_DAY_DATE = re.compile(
    r"\b\d{1,4}[-/._]\d{1,2}[-/._]\d{2,4}\b"                     # 12/22/17, 2017-12-01, 12_22_17, 14.12.2017
    rf"|\b{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{4}})?\b"   # December 21, Dec 21st 2017
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\.? {_MONTH}\b",                 # 21 December, 14th Dec, 3. Dezember
    re.I)
# A whole day-date first, so that substituting it leaves nothing of "December 4, 2017" (program_label).
_DATE = re.compile(rf"{_DAY_DATE.pattern}|\b(?:{_DAY_OR_MONTH_NAME}|{_DAY_OR_MONTH_SHORT})\b", re.I)
_NUMBERING = re.compile(
    r"\b(?:episode|episodes|ep|eps|epi|folge|aflevering|episodio|épisode|part|pt|teil|deel|parte|hour|hr|"
    r"segment|show|chapter|vol|volume|session|week|day|tag|no|nr|number)\.?\s*#?\d+\b"
    r"|#\d+|\b\d+\s*(?:of|/)\s*\d+\b",
    re.I)
# Words that label a feed item rather than say what it is about: a query of only these ("parte", "full episode"),
# or a short one with one of them ("episode ken" from "On this episode Ken and ...", "thinkery podcast"), is
# numbering without the number.
FORMAT_WORDS = frozenset(
    "episode episodes ep folge folgen aflevering episodio episodios épisode part parts parte partes teil deel hour "
    "hours segment segments show shows podcast podcasts chapter capitulo capítulo chapitre session sessions "
    "edition season series bonus intro outro recap update updates special full callers guest guests "
    "daily weekly nightly monthly".split())
# Words a feed labels an item's format or parts with, which a topic can still contain ("questions about grief",
# "the introduction of the euro"): a query of only these ("questions and answers", "introduction", "replay",
# "trailer") is numbering without the number, but a short query with one is not (unlike FORMAT_WORDS).
LABEL_WORDS = frozenset(
    "introduction introductions overview question questions answer answers mailbag trailer trailers teaser "
    "preview previews highlights replay rerun encore clips transcript transcripts notes summary conclusion welcome "
    "listener listeners audio video videos".split())
# Numbering around a title's topic: "Ep 17 - ", "478: ", "#99 ", "005 - ", " | Part 2", " (Part 2)", " [Episode 43]".
_LEADING = re.compile(
    r"^\s*(?:(?:(?:episode|ep|eps|folge|aflevering|show|no|nr|part|pt|chapter|session|day)\.?\s*|#)\d+[a-z]?"
    r"\s*[:|\-–—.)\]]*\s*|\d+[a-z]?\s*[:|\-–—.)\]]+\s*)", re.I)
_TRAILING = re.compile(
    r"\s*(?:[|\-–—:,(\[]\s*)?(?:episode|ep|folge|part|pt|teil|deel|hour|hr|segment|show|no|nr)\.?\s*#?\d+[a-z]?"
    r"\s*[)\]]?\s*$|\s*[|(\[]\s*#?\d+\s*[)\]]?\s*$|\s+#\d+\s*$", re.I)

def words(text: str) -> list[str]:
    """Lower-case word tokens, as the filters and the keyword generator see text."""
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORD_SET and not w.isdigit()]


# "<show> Episode 12: <topic>", "YT#05: <topic>": everything up to numbering followed by a separator goes.
_UP_TO_NUMBERING = re.compile(
    r"^.*?(?:\b(?:episode|ep|folge|aflevering|episodio|part|pt|session|chapter)\.?\s*#?\d+[a-z]?|#\d+)"
    r"\s*[:|\-–—]\s*(?=\S+\s+\S)", re.I)  # only when at least two words of topic follow
_DIGIT = re.compile(r"\d")
_EDGE_DATE = re.compile(
    rf"^\s*(?:{_DAY_DATE.pattern})\s*[:|\-–—]\s*|\s*(?:[:|\-–—]\s*|\()(?:{_DAY_DATE.pattern})\)?\s*$", re.I)


def without_furniture(title: str, description: str) -> str:
    """`title. description` without what a feed wraps around the episode -- FURNITURE's credits, URLs, e-mails,
    handles -- each cut ending a segment ("|") so no phrase spans it; and without the description when it is only
    "<title> by <author>"."""
    rest = description[len(title):] if description.lower().startswith(title.lower()) else None
    if rest is not None and _AUTHOR_CREDIT.fullmatch(rest):
        description = ""
    text = FURNITURE.sub("|", f"{title}. {description}")
    return HANDLE.sub("|", URL_OR_EMAIL.sub("|", text))


def tidy(query: str) -> str:
    """The query without episode numbering or a date before or after its topic (applied before any rule is
    checked): "Angry Gallo Season 2, Episode 11: Minced Beef Thick Soup" -> "Minced Beef Thick Soup"."""
    if not _DIGIT.search(query):
        # Every pattern below needs a digit, so without one only the strip applies (and it is idempotent). Most
        # candidates have none; this skips 8 regex passes each, and tidy was a large share of pseudo generation
        # (docs/scale.md).
        return query.strip(" -–—:|,.")
    previous = None
    while previous != query:
        previous = query
        query = _EDGE_DATE.sub("", _UP_TO_NUMBERING.sub("", query))
        query = _TRAILING.sub("", _LEADING.sub("", query)).strip(" -–—:|,.")
    return query


# What a broadcast's title says besides its program's name, beyond _DATE: airtimes, years, day/month without a year
# and the weekdays _DATE leaves to words ("Hoy por Hoy Granada (02/12/2017 - 13:05 a 14:00)", "Onde Road di dom
# 03/12"). In a title these are dates as often as not; a program needs two titles with the same rest.
_TITLE_DATE = re.compile(r"\b\d{1,2}[:.h]\d{2}\b|\b\d{1,2}/\d{1,2}\b|\b(?:19|20)\d{2}\b|\b(?:mon|sun)\b", re.I)


@functools.lru_cache(maxsize=4096)
def program_label(title: str) -> str | None:
    """The name of the program a dated title broadcasts: its words without dates and airtimes ("Nips: December 4,
    2017" -> "nips"). None for a title without a date, or with nothing else."""
    undated = _TITLE_DATE.sub(" ", _DATE.sub(" ", title))
    label = " ".join(words(undated))
    return label if label and label != " ".join(words(title)) else None


class DocumentFrequencies:
    """Inverse document frequency of content words over the episode texts: how much a word says about a topic.

    Given each text's show, it also keeps every show's recurring words: those in at least RECURRING_SHARE of the
    show's episodes, and in two at least (shows with MIN_SHOW_EPISODES or more). They are what the show's feed
    repeats from item to item -- hosts, venues, stations, taglines, airtimes ("listen weekdays", "centre in perth",
    "manna church sunday") -- so they say little about one episode, whatever their corpus IDF. 0.3 rather than a
    majority: a venue named in a third of a long-running show's descriptions is still the feed's, not an episode's.

    Given the titles too, it does the same within each program of a show: the episodes whose dated titles name the
    same program (`program_label`), from two episodes up. A feed that broadcasts several programs ("Hora 14
    Granada", "Hora 25 Deportes Granada" in Radio Baza) repeats each one's standing lines ("diez minutos de
    resumen") in too few of the show's episodes to count, and a show of two episodes, both "Nips: <date>", is one
    program. Two episodes are enough here and not for a show: two dated broadcasts under one name share the
    program's furniture, while two undated episodes of a show as often share a two-part topic ("yankees").
    Shows are counted one at a time, so memory holds one show's words."""

    RECURRING_SHARE = 0.3
    MIN_SHOW_EPISODES = 3
    MIN_PROGRAM_EPISODES = 2

    def __init__(self, texts: Iterable[str], shows: Iterable[str] | None = None, titles: Iterable[str] | None = None):
        texts = list(texts)
        shows = list(shows) if shows is not None else [""] * len(texts)
        labels = [program_label(t) for t in titles] if titles is not None else [None] * len(texts)
        if not len(shows) == len(labels) == len(texts):
            raise ValueError(f"{len(texts)} texts but {len(shows)} show ids and {len(labels)} titles")
        counts: Counter[str] = Counter()
        self._recurring: dict[tuple[str, str | None], frozenset[str]] = {}
        by_show: dict[str, list[int]] = {}
        for i, show in enumerate(shows):
            by_show.setdefault(show, []).append(i)
        for show, rows in by_show.items():
            episode_words = {i: set(content_words(texts[i])) for i in rows}
            counts.update(w for i in rows for w in episode_words[i])
            if not show:
                continue
            if len(rows) >= self.MIN_SHOW_EPISODES:
                self._recurring[show, None] = self._repeated([episode_words[i] for i in rows])
            programs: dict[str, list[int]] = {}
            for i in rows:
                if labels[i] is not None:
                    programs.setdefault(labels[i], []).append(i)
            for label, program_rows in programs.items():
                if len(program_rows) >= self.MIN_PROGRAM_EPISODES:
                    self._recurring[show, label] = self._repeated([episode_words[i] for i in program_rows])
        self.n = max(len(texts), 1)
        self._df = counts

    @classmethod
    def _repeated(cls, episodes: list[set[str]]) -> frozenset[str]:
        in_episodes = Counter(w for episode in episodes for w in episode)
        return frozenset(w for w, n in in_episodes.items() if n >= max(2.0, cls.RECURRING_SHARE * len(episodes)))

    def recurring(self, show: str | None, title: str | None = None) -> frozenset[str]:
        """Content words in at least 30% of `show`'s episodes and two of them (none for a show of fewer than 3),
        with those of the program the episode `title` names, if any."""
        of_show = self._recurring.get((show or "", None), frozenset())
        label = program_label(title) if title else None
        if label is None:
            return of_show
        return of_show | self._recurring.get((show or "", label), frozenset())

    def idf(self, word: str) -> float:
        return math.log((1 + self.n) / (1 + self._df.get(word, 0)))

    def content_score(self, query: str) -> float:
        """Sum of the IDF of the query's distinct content words (stopwords and numbers count 0)."""
        return self.score_words(set(content_words(query)))

    def score_words(self, distinct_content_words: set[str]) -> float:
        return sum(self.idf(w) for w in distinct_content_words)


def reject_reason(query: str, show_title: str, frequencies: DocumentFrequencies | None, min_content: float,
                  recurring: frozenset[str] = frozenset()) -> str | None:
    """The first rule the (tidied) query breaks, or None. `recurring`: the words the episode's show and program
    repeat (`DocumentFrequencies.recurring`), looked up once per episode by the caller."""
    if any(rule.search(query) for rule in (URL_OR_EMAIL, _BOILERPLATE, FURNITURE, HANDLE)):
        return "boilerplate"
    if _DATE.search(query):
        return "date"
    topic = set(content_words(query))
    if _NUMBERING.search(query) or (topic and topic <= FORMAT_WORDS | LABEL_WORDS):
        return "episode_number"
    if topic and _about_the_show(topic, show_title, recurring):
        return "show_name"
    if _is_short_with(topic, FORMAT_WORDS):  # after show_name: "Moose Podcast" is the show's name
        return "episode_number"
    if frequencies is not None and frequencies.score_words(topic) < min_content:
        return "low_content"
    return None


def _about_the_show(topic: set[str], show_title: str, recurring: frozenset[str]) -> bool:
    """The query names the show rather than an episode's topic: all its words are the show title's or words the
    show repeats (DocumentFrequencies.recurring); or it is short (at most SHORT_QUERY content words, as key phrases
    are) and one of them is from the show title ("best of greg" for "Greg & The Morning Buzz", "hammondcast on
    kyou") or the title's initials ("yhtws")."""
    title = _show_words(show_title)
    if topic <= title | recurring or topic & _show_initials(show_title):
        return True
    return _is_short_with(topic, title)


SHORT_QUERY = 3


def _is_short_with(topic: set[str], vocabulary: frozenset[str]) -> bool:
    """A short query (key-phrase length) is mostly its few words: one of them from `vocabulary` sets its meaning."""
    return len(topic) <= SHORT_QUERY and bool(topic & vocabulary)


@functools.lru_cache(maxsize=4096)
def _show_initials(show_title: str) -> frozenset[str]:
    """The initials of the show title's words when there are at least three ("yhtws"), and from two with a plural
    "s" ("dbs" for Doze Bros: "DBs Show EP 20"). Two letters alone are not a phrase the keyword generator makes."""
    initials = "".join(w[0] for w in words(show_title))
    if len(initials) < 2:
        return frozenset()
    return frozenset([initials + "s", initials] if len(initials) >= 3 else [initials + "s"])


@functools.lru_cache(maxsize=4096)
def _show_words(show_title: str) -> frozenset[str]:
    """The show title's content words and the title run together ("countdowncitygeekcast", as handles and hashtags
    write it), computed once for all the candidates of an episode."""
    return frozenset([*content_words(show_title), "".join(words(show_title))])
