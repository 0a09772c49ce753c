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
# video" and WordPress's "The post <title> appeared first on <site>". Generators that cut phrases out of a text cut
# these out first (`without_furniture`): a sponsor's, photographer's or site's name alone ("unh athletics", "ryan
# remiorz", "muscle appeared") passes every rule on the query.
FURNITURE = re.compile(
    r"[(\[]\s*(?:photos?|images?|pictures?)\s*(?:credit|courtesy|by)?s?\s*:[^)\]]*[)\]]"
    r"|\b(?:brought to you by|sponsored by|presented by|powered by|in partnership with|watch and share|"
    r"(?:image|photo|picture)s? (?:credit|courtesy)s?|the post\b.{0,300}?\bappeared first on)[^.!?|\n]*", re.I)
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
_DAY_DATE = re.compile(
    r"\b\d{1,4}[-/._]\d{1,2}[-/._]\d{2,4}\b"                     # 12/22/17, 2017-12-01, 12_22_17, 14.12.2017
    rf"|\b{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{4}})?\b"   # December 21, Dec 21st 2017
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\.? {_MONTH}\b",                 # 21 December, 14th Dec, 3. Dezember
    re.I)
_DATE = re.compile(rf"\b(?:{_DAY_OR_MONTH_NAME})\b|{_DAY_DATE.pattern}", re.I)
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
        # candidates have none; this skips 8 regex passes each (tidy was 15% of pseudo generation on 50k episodes).
        return query.strip(" -–—:|,.")
    previous = None
    while previous != query:
        previous = query
        query = _EDGE_DATE.sub("", _UP_TO_NUMBERING.sub("", query))
        query = _TRAILING.sub("", _LEADING.sub("", query)).strip(" -–—:|,.")
    return query


class DocumentFrequencies:
    """Inverse document frequency of content words over the episode texts: how much a word says about a topic.

    Given each text's show, it also keeps every show's recurring words: those in at least RECURRING_SHARE of the
    show's episodes, and in two at least (shows with MIN_SHOW_EPISODES or more). They are what the show's feed
    repeats from item to item -- hosts, venues, stations, taglines, airtimes ("listen weekdays", "centre in perth",
    "manna church sunday") -- so they say little about one episode, whatever their corpus IDF. 0.3 rather than a
    majority: a venue named in a third of a show's 212 descriptions is still the feed's, not an episode's. Shows are
    counted one at a time, so memory holds one show's words."""

    RECURRING_SHARE = 0.3
    MIN_SHOW_EPISODES = 3

    def __init__(self, texts: Iterable[str], shows: Iterable[str] | None = None):
        texts = list(texts)
        shows = list(shows) if shows is not None else [""] * len(texts)
        if len(shows) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(shows)} show ids")
        counts: Counter[str] = Counter()
        self._recurring: dict[str, frozenset[str]] = {}
        by_show: dict[str, list[int]] = {}
        for i, show in enumerate(shows):
            by_show.setdefault(show, []).append(i)
        for show, rows in by_show.items():
            in_show: Counter[str] = Counter()
            for i in rows:
                in_show.update(set(content_words(texts[i])))
            counts.update(in_show)
            if show and len(rows) >= self.MIN_SHOW_EPISODES:
                self._recurring[show] = frozenset(
                    w for w, n in in_show.items() if n >= max(2.0, self.RECURRING_SHARE * len(rows)))
        self.n = max(len(texts), 1)
        self._df = counts

    def recurring(self, show: str | None) -> frozenset[str]:
        """Content words in at least 30% of `show`'s episodes and two of them (none for a show of fewer than 3)."""
        return self._recurring.get(show or "", frozenset())

    def idf(self, word: str) -> float:
        return math.log((1 + self.n) / (1 + self._df.get(word, 0)))

    def content_score(self, query: str) -> float:
        """Sum of the IDF of the query's distinct content words (stopwords and numbers count 0)."""
        return self.score_words(set(content_words(query)))

    def score_words(self, distinct_content_words: set[str]) -> float:
        return sum(self.idf(w) for w in distinct_content_words)


def reject_reason(query: str, show_title: str, frequencies: DocumentFrequencies | None, min_content: float,
                  show_id: str | None = None) -> str | None:
    """The first rule the (tidied) query breaks, or None."""
    if any(rule.search(query) for rule in (URL_OR_EMAIL, _BOILERPLATE, FURNITURE, HANDLE)):
        return "boilerplate"
    if _DATE.search(query):
        return "date"
    topic = set(content_words(query))
    if _NUMBERING.search(query) or (topic and topic <= FORMAT_WORDS):
        return "episode_number"
    if topic and _about_the_show(topic, show_title, frequencies.recurring(show_id) if frequencies else frozenset()):
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
    """The initials of the show title's words, when there are at least three ("yhtws")."""
    initials = "".join(w[0] for w in words(show_title))
    return frozenset([initials]) if len(initials) >= 3 else frozenset()


@functools.lru_cache(maxsize=4096)
def _show_words(show_title: str) -> frozenset[str]:
    """The show title's content words and the title run together ("countdowncitygeekcast", as handles and hashtags
    write it), computed once for all the candidates of an episode."""
    return frozenset([*content_words(show_title), "".join(words(show_title))])
