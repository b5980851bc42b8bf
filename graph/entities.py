"""Named entities in a memory's text: the names, titles, hashtags and handles it mentions.

The graph links memories that mention the same entity through an entity node, so this
module decides what counts as "the same thing mentioned twice". It is rule-based (no model,
no downloads, stdlib only) because it runs on every write. The two kinds of error cost
different amounts. A common word taken for a name ("Thanks", "Yesterday") becomes a hub
that links every memory to every other. A missed name costs one bridge. So the rules lean
towards precision, and the word lists below were tuned on chat turns (LoCoMo).

What is extracted, and why
--------------------------
* **Names** (kind ``"name"``) are runs of capitalised words separated only by spaces:
  "Caroline", "New York", "Ed Sheeran". Inside a run, a lowercase connector ("of", "the",
  "de", "da", "van", "von", ...) or "&" may join two capitalised words ("Bank of America",
  "Leonardo da Vinci", "Barnes & Noble"). A connector never starts or ends a name.
  "Capitalised" covers three cases. The first is an upper-case first letter, in any script
  that has case ("José", "Zoë", "Łódź"). The second is an inner capital after a lower-case
  start ("iPhone", "eBay"). The third is an ALL-CAPS acronym of two or more letters
  ("LGBTQ", "NASA", "U.S."). A word that starts with a digit ("3D", "4K", "2077") is a
  number or a descriptor, not a name, so it ends a run. Punctuation (commas, brackets,
  dashes) ends a run too, so "Jon, Mel" is two names. A possessive ends a run:
  "Caroline's Mom" gives "Caroline". A period ends a run too, except after an honorific, a
  name abbreviation or a middle initial ("Dr. Smith", "St. Louis", "John F. Kennedy").
* **Titles** (kind ``"title"``) are the text inside double quotes (straight, curly or
  guillemets) when it is 1 to 8 words in title case: ``"Charlotte's Web"``,
  ``“Becoming Nicole”``. Title case means the first word and every word except short
  function words are capitalised. That test keeps out quoted speech ("just keep swimming")
  and scare quotes ("me-time"). A title is taken whole, and its words yield no separate
  names. Single quotes are not used, because they cannot be told apart from apostrophes.
* **Tags** (``"#pride"``) and **handles** (``"@jon"``) are a ``#`` or ``@`` followed by
  word characters that include a letter. The sigil must not follow a word character, so
  e-mail addresses and "C#" are not tags. URLs and e-mail addresses are skipped entirely.

What is not extracted, and why
------------------------------
* **Never names** (:data:`_NON_ENTITIES`): "I" and every other pronoun; contractions ("I'm",
  "don't", "you've"); greetings and interjections, including elongated ones ("Hey",
  "Wow", "Haha", "Thanks", "Congrats", "Awww", "Ahhahha"); chat acronyms ("LOL", "OMG",
  "BTW", "TV"); relative time words ("Today", "Yesterday"), quarters and time zones ("Q3",
  "EST"); and months, weekdays and seasons. Months and weekdays are time expressions, and
  the time parser handles them; losing "May" and "June" as given names is the price. These
  words also break a run wherever they appear, so "Hey Mel" gives "Mel".
* **Sentence-initial words are ambiguous**, because English capitalises the first word of a
  sentence. A sentence starts at the beginning of the text and after ``. ! ? … : ;``, a
  newline, a double quote or an emoji. It still counts as the start after words that only
  open a sentence: "Hey Mel" and "Sounds Amazing Caroline" start with "Mel" and "Caroline".
  At a sentence start, words from :data:`_LEADING_WORDS` are trimmed from the front of a
  run. That list holds a few hundred words that often open chat sentences: determiners,
  auxiliaries, adverbs, common verbs and evaluative adjectives. So "Remember Jon" gives
  "Jon", and "Will Smith" at a sentence start gives "Smith". Mid-sentence, a run is kept
  whole ("I love Under Armour"). "The" and honorifics are trimmed from the front
  everywhere, so "The Beatles" and "the Beatles" are one entity.
* **A one-word name must not be a listed word** (:data:`_LEADING_WORDS`,
  :data:`_SOLO_WORDS`, :data:`_NON_ENTITIES`), wherever it stands. Chat capitalises after
  commas too ("Sounds great, See you soon"), so this check is not limited to sentence
  starts. "Will", "Hope" and "Chef" on their own are lost this way. :data:`_SOLO_WORDS`
  holds common nouns and adjectives that also start proper names ("new", "little",
  "great", "rock", "family", "user"). They are never trimmed, so "Little acts of kindness"
  gives nothing while "Little Women" and "New York" are kept.
* **A suffix rule for the first word of a sentence**: no list covers every common word,
  so a lone capitalised first word of a sentence is also dropped when its form marks it as
  a common word. These forms are "-ing" ("Painting is fun"), a plural "-s" after a
  consonant or "-ies" ("Books are great", "Movies"), a past tense "-ed" ("Missed you!"), and
  noun or adjective suffixes ("-tion", "-ness", "-ity", "-ment", "-ship", "-ous", "-ful",
  ...). The word is kept anyway if it is also capitalised mid-sentence in the same text.
  Names of that shape that only ever open sentences ("Athens", "Beijing") are the price.
* **Shouting is not an acronym**: an ALL-CAPS word counts as emphasis when it is a listed
  common word ("JUST", "IT", "GO"), or has 7+ letters of which 3+ are vowels ("INTENSE",
  "AWESOME").
* **Honorifics** ("Mr", "Mrs", "Ms", "Dr", "Prof") are dropped from the front of a name, so
  "Dr. Smith" and "Smith" are one entity. Abbreviations that belong to a name ("St. Louis",
  "Mt. Rainier", "King Jr.") are kept, and their period does not end the name.
* Single characters and pure numbers are never entities.

Keys (identity)
---------------
``Entity.key`` decides when two mentions are the same entity. It is built from the label
in these steps:

* NFC-normalise, casefold, collapse whitespace and straighten curly apostrophes.
* Remove periods: "U.S." -> "us", "J.K. Rowling" -> "jk rowling".
* Strip a trailing possessive: "Caroline's" -> "caroline", "James'" -> "james". This also
  turns "McDonald's" into "mcdonald", which is harmless because every mention is treated
  the same way.
* Strip a leading "the ": "The Beatles", "the Beatles" and a quoted "The Beatles" all key
  as "beatles". Only "the" is stripped, so "A Dance with Dragons" keeps its "a".

Accents are kept, so "josé" and "jose" differ: folding accents is not safe across scripts.
Tags and handles keep their sigil ("#pride", "@jon"), so a hashtag never merges with a
person's name. Entities of different kinds that share a key are one entity, and the first
mention wins.

Scripts without case (CJK, Arabic, ...) yield only titles, tags and handles.

Cost
----
Every regex is compiled at import, and the word pattern has no lookarounds. Lowercase
words, which are most of any text, take a fast path. The classification of the other words
is cached, because names recur from one write to the next. A 300-character chat turn takes
about 0.1 ms.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Entity", "extract_entities"]


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity mentioned in a text.

    ``key`` is the normalised identity (see the module docstring), and ``label`` is the
    surface form of the first mention. ``kind`` is one of ``"name"``, ``"title"``,
    ``"tag"`` or ``"handle"``.
    """

    key: str
    label: str
    kind: str


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


# Never an entity, wherever it appears; these words also break a run of capitalised words.
_NON_ENTITIES = _words(
    """
    i me my mine myself you your yours yourself yourselves he him his himself she her hers
    herself it its itself we us our ours ourselves they them their theirs themselves
    y'all ya ur
    hey heya hi hiya hello howdy yo sup bye goodbye cya ciao
    oh ooh ah aah aha aw aww uh um hm hmm huh eh wow woah whoa yay yeah yea yeh yep yup yes no
    nope nah ok okay okey kk ha hah heh lol lmao lmfao rofl omg omfg wtf btw tbh imo imho idk fyi
    asap brb ttyl smh np ty thx tysm pls plz please thanks thank thankyou cheers congrats
    congratulations kudos oops whoops ugh phew gosh geez jeez duh meh welp alright aight
    bravo woohoo woo woo-hoo hooray yippee yikes xoxo yum yummy oof ouch bummer dang darn
    mm gotcha lemme looky omw gg
    today tonight tomorrow yesterday tonite
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    monday tuesday wednesday thursday friday saturday sunday mon tues wed thurs fri
    spring summer autumn fall winter
    tv diy pm am ps aka etc eg ie dm
    q1 q2 q3 q4 utc gmt est edt cst cdt mst mdt pst pdt cet cest bst ist jst
    """
)

# Honorifics: dropped from the front of a name, and their period does not end a sentence.
_HONORIFICS = _words("mr mrs ms mx miss dr prof")
# Abbreviations that belong to the name; their period does not end a sentence either.
_NAME_ABBREVIATIONS = _words("st mt ft jr sr")

# Trimmed from the front of any run. Deliberately absent: words that often begin a multiword
# proper noun ("new", "little", "great", ... are in _SOLO_WORDS instead) and common given
# names ("mark", "grace", "joy", "max", "chase", "bill").
_LEADING_WORDS = (
    _NON_ENTITIES
    | _HONORIFICS
    | _words(
        """
        a an the this that these those some any every each all both either neither another
        other others such much many more most few several enough lots plenty same
        who whom whose what whatever when whenever where wherever why how which
        and but or nor so yet because cause cuz since although though while if unless until
        till once whether as than then also plus still anyway anyways besides however
        therefore meanwhile otherwise instead apart
        about above across after against along among around at before behind below beside
        between beyond by despite during except for from in inside into like near of off on
        onto out outside over past per through throughout to toward towards under unlike up
        upon with within without
        am is are was were be been being have has had having do does did doing done will
        would shall should can could might must ought need needs let lets gonna wanna gotta
        just really actually honestly definitely totally absolutely seriously basically
        literally probably maybe perhaps hopefully luckily thankfully unfortunately
        fortunately sadly finally recently lately usually always never sometimes often ever
        already again almost even only quite rather pretty very too super well sure surely
        indeed certainly clearly obviously especially particularly generally personally
        currently eventually initially originally apparently highly truly simply mostly
        mainly somewhat overall here there now anytime everywhere together alone not
        everything something anything nothing everyone someone anyone nobody everybody
        somebody anybody none
        one two three four five six seven eight nine ten first second third last next
        awesome amazing wonderful fantastic fabulous incredible beautiful lovely perfect
        excellent brilliant impressive impressed interesting exciting glad happy sad proud
        sorry excited thankful grateful lucky busy tired true right wrong exactly crazy cute
        adorable neat insane epic awful terrible scary stressful important jealous
        confident difficult unforgettable blessed
        sounds sound looks look seems seem feels feel felt hope hoping guess think thought
        thinking know knew love loved loving like liked want wanted wish wishing keep kept
        take took taking takes make made making makes go going went get got getting gets
        come came coming tell told say said see saw seeing seen check checked remember try
        tried trying give gave gives enjoy enjoyed enjoying started starting mind imagine
        speak speaking talk talking wait watch listen stay hang hold means meant agreed
        agree appreciate appreciated believe catch cherish reminds remind bet share sharing
        found find learned learning playing working doing feeling being having winning
        losing finding creating writing painting dancing running reading watching staying
        exploring connecting supporting knowing giving searching relaxing hanging
        volunteering networking missed joined met heard understand follow build read use
        put create gather push capture tackle spill dyed later chat turn write call text
        email send bring buy pick drop meet ask answer stop open close join visit sign wear
        walk eat drink cook bake sleep relax plan grab head shop pay save spend leave move
        play sing draw paint travel hike swim learn teach help thank note
        """
    )
)

# Dropped as a name on their own, kept inside a longer name ("Little Women", "Rock Hill").
_SOLO_WORDS = _words(
    """
    new old young big small little long short great good nice cool best better fun funny
    hard tough real pure simple mental physical positive negative strong sweet wild
    happy grand high low open free lost mixed
    red blue green yellow black white purple pink orange gold silver gray grey brown
    life family nature art music time people things thing stuff work school friends friend
    kids books book pets dogs cats moments challenges setbacks events creativity care
    change show dance yoga pottery basketball way day days week year years game games movie
    movies fantasy rock count man guy girl kid dog cat home love support community trust
    progress balance strength stories story quality meal friendship laughter dedication
    rejection injury worries obstacles confidence guidance respect success expression
    adoption unemployment themes rest visual competitive domestic unconditional clay
    guitar horses veggies store coconut birthday morning evening night weekend chef
    user assistant agent bot customer client team meeting project task note notes
    """
)

# Lowercase words that may join two capitalised words inside one name.
_CONNECTORS = _words("of the de da di del della der den des du van von la le y bin al")

# A lone first word of a sentence with one of these endings is a common word (see above).
_COMMON_SUFFIX_RE = re.compile(
    r"(?:..(?<![jq])(?<!thanksgiv)ing|[^aeiousy']s|ies|..[^rme]ed|...ness|ity|.tion|sion"
    r"|ment|ship|ous|.ful|less|...ive|..able|ible|ism)$"
)
_ELONGATION_RE = re.compile(r"(.)\1{2,}")
_LAUGH_RE = re.compile(r"(?=a*h)[ah]{3,}|(?=e*h)[eh]{3,}|(?=i*h)[ih]{4,}|(?:lo)+l|x+d+|m{2,}")
_URL_RE = re.compile(r"(?:[A-Za-z][\w+.-]*://|[Ww][Ww][Ww]\.)\S+")
# An e-mail address, matched from its "@" (scanning for the local part first is slow).
_EMAIL_DOMAIN_RE = re.compile(r"@[\w-]+(?:\.[\w-]+)+")
_EMAIL_LOCAL_CHARS = frozenset("._+-")
_QUOTE_RE = re.compile(r'"([^"\n]{1,200})"|“([^”\n]{1,200})”|«([^»\n]{1,200})»')
_TAG_RE = re.compile(r"([#@])(?<![\w&#@][#@])(\w+)")
# A word: letters/digits with inner apostrophes, hyphens and ampersands ("O'Brien",
# "Jean-Luc", "AT&T") and an optional trailing apostrophe (the possessive of "James'").
# Written without lookarounds, because this pattern runs over every word of every write.
_TOKEN_RE = re.compile(r"[^\W_]+(?:['’\-&][^\W_]+)*['’]?")
# A dotted acronym or initials ("U.S.", "J.K."), tried where a one-letter word meets a ".".
_DOTTED_RE = re.compile(r"(?:[^\W\d_]\.){2,}")
_SPACE_RE = re.compile(r"[ \t\u00a0]*")
_AMPERSAND_RE = re.compile(r"[ \t\u00a0]*&[ \t\u00a0]*")
_INITIAL_GAP_RE = re.compile(r"\.[ \t\u00a0]+")
# Characters that end a sentence (or start a new utterance) when found between two words.
_BOUNDARY_RE = re.compile(r"[.!?…:;\n\r\"“”«»\u2600-\u27bf\U0001f000-\U0001faff]")
_CONTRACTION_RE = re.compile(r"n['’]t$|['’](?:m|re|ve|ll|d)$", re.IGNORECASE)
_TITLE_STRIP = " \t.,;:!?…-–—'’"
# Words a title-case title may leave in lowercase.
_TITLE_MINOR = _words(
    "a an the and or but nor of in on at to for with from by as into onto over via vs "
    "de la le du von van is"
)
_VOWELS = frozenset("AEIOUY")
_MAX_TITLE_WORDS = 8
_MASK = "\x00"

# Token classes.
_CAP, _CONNECTOR, _BREAK, _WORD = 0, 1, 2, 3


def _strip_possessive(word: str) -> str:
    """ "Caroline's" -> "Caroline", "James'" -> "James" (and a stray closing quote goes)."""
    if word[-1:] in ("'", "’"):
        return word.rstrip("'’")
    if len(word) > 2 and word[-1] in "sS" and word[-2] in "'’":
        return word[:-2]
    return word


def _key(label: str) -> str:
    key = " ".join(label.replace("’", "'").casefold().split())
    key = _strip_possessive(key).replace(".", "")
    if key.startswith("the ") and len(key) > 4:
        key = key[4:]
    return key


def _is_filler(folded: str) -> bool:
    """A casefolded word that is never an entity: listed, elongated ("awww") or laughter."""
    if folded in _NON_ENTITIES:
        return True
    if _ELONGATION_RE.search(folded) and _ELONGATION_RE.sub(r"\1", folded) in _NON_ENTITIES:
        return True
    return folded[0] in "aehilmx" and _LAUGH_RE.fullmatch(folded) is not None


def _is_common(folded: str) -> bool:
    """A casefolded word that is not a name on its own."""
    return folded in _LEADING_WORDS or folded in _SOLO_WORDS or _is_filler(folded)


def _looks_common(word: str) -> bool:
    """Whether a word's form marks it as a common word: "Painting", "Books", "Real-life"."""
    if _COMMON_SUFFIX_RE.search(word.casefold()):
        return True
    return any(part[:1].islower() for part in word.split("-")[1:])


def _is_title(text: str) -> bool:
    words = text.split()
    if not 1 <= len(words) <= _MAX_TITLE_WORDS or not words[0][:1].isupper():
        return False
    if len(words) == 1 and _is_common(_strip_possessive(words[0]).casefold()):
        return False
    return all(
        word.casefold() in _TITLE_MINOR or not word[:1].isalpha() or word[:1].isupper()
        for word in words[1:]
    )


@functools.lru_cache(maxsize=4096)
def _classify(token: str) -> tuple[int, str]:
    """The token's class, and the token without a trailing possessive or apostrophe.

    Cached: names and capitalised common words recur from one write to the next.
    """
    if not token[0].isalpha():
        return _BREAK, token  # numbers and "3D"-like descriptors
    if "." in token:  # dotted acronym or initials: "U.S.", "J.K."
        return (_CAP, token) if token.isupper() else (_BREAK, token)
    has_apostrophe = "'" in token or "’" in token
    if has_apostrophe and _CONTRACTION_RE.search(token):
        return _BREAK, token
    bare = _strip_possessive(token) if has_apostrophe else token
    if not bare:
        return _BREAK, token
    folded = bare.casefold().replace("’", "'")
    if _is_filler(folded):
        return _BREAK, bare
    if not (bare[0].isupper() or bare[0].istitle()):  # lowercase, or a script without case
        if folded in _CONNECTORS:
            return _CONNECTOR, bare
        if any(ch.isupper() for ch in bare[1:]):
            return _CAP, bare  # iPhone, eBay
        return _WORD, bare
    if len(bare) >= 2 and bare.isupper() and _is_shouting(bare, folded):
        return _BREAK, bare
    return _CAP, bare


def _is_shouting(word: str, folded: str) -> bool:
    """Whether an ALL-CAPS word is emphasis ("JUST", "INTENSE") rather than an acronym."""
    if _is_common(folded):
        return True
    return len(word) >= 7 and sum(ch in _VOWELS for ch in word) >= 3


def extract_entities(text: str, *, max_entities: int = 16) -> list[Entity]:
    """Extract the named entities mentioned in ``text``.

    Parameters
    ----------
    text:
        Any text: a chat turn, a fact, an event description.
    max_entities:
        The most entities to return. The first ones mentioned are kept.

    Returns
    -------
    list[Entity]
        Unique entities (by ``key``) in order of first mention, at most ``max_entities``.
        Each keeps the surface form of its first mention as ``label``.

    Examples
    --------
    >>> text = "Caroline went to the LGBTQ support group in New York with Melanie."
    >>> [e.label for e in extract_entities(text)]
    ['Caroline', 'LGBTQ', 'New York', 'Melanie']
    >>> extract_entities("Yesterday I met Jon's sister. Thanks, Jon!")
    [Entity(key='jon', label='Jon', kind='name')]
    >>> [(e.label, e.kind) for e in extract_entities('Wow! I loved "Becoming Nicole" #pride')]
    [('Becoming Nicole', 'title'), ('#pride', 'tag')]
    >>> [e.key for e in extract_entities("The Beatles, the Beatles and Leonardo da Vinci")]
    ['beatles', 'leonardo da vinci']
    >>> extract_entities("")
    []
    """
    if max_entities <= 0 or not text:
        return []
    text = unicodedata.normalize("NFC", text)
    found: list[tuple[int, str, str]] = []  # (position, label, kind)
    scan = text  # the text with URLs, titles, tags and handles blanked out

    def mask(start: int, end: int) -> str:
        return scan[:start] + _MASK * (end - start) + scan[end:]

    if "://" in scan or "ww." in scan or "WW." in scan:
        for match in _URL_RE.finditer(text):
            scan = mask(*match.span())
    at = scan.find("@")
    while at > 0:
        domain = _EMAIL_DOMAIN_RE.match(scan, at)
        begin = at
        while begin and (scan[begin - 1].isalnum() or scan[begin - 1] in _EMAIL_LOCAL_CHARS):
            begin -= 1
        if domain and begin < at:
            scan = mask(begin, domain.end())
        at = scan.find("@", at + 1)
    if '"' in scan or "“" in scan or "«" in scan:
        for match in _QUOTE_RE.finditer(scan):
            group = next(g for g in (1, 2, 3) if match.group(g) is not None)
            inner = match.group(group)
            title = inner.strip(_TITLE_STRIP)
            if title and _MASK not in title and _is_title(title):
                found.append((match.start(group) + inner.index(title), title, "title"))
                scan = mask(*match.span())
    if "#" in scan or "@" in scan:
        for match in _TAG_RE.finditer(scan):
            if any(ch.isalpha() for ch in match.group(2)):
                kind = "tag" if match.group(1) == "#" else "handle"
                found.append((match.start(), match.group(), kind))
                scan = mask(*match.span())

    names: list[tuple[int, str, bool]] = []  # (position, label, needs confirmation)
    confirmed: set[str] = set()  # words capitalised somewhere other than a sentence start
    # The run of capitalised words being collected: (start, end, word, sentence-initial?).
    run: list[tuple[int, int, str, bool]] = []
    connectors = 0  # trailing connector words in the run not yet followed by a capital

    def flush() -> None:
        if connectors:
            del run[-connectors:]
        while run:
            _, _, word, initial = run[0]
            folded = word.casefold()
            if (
                word.islower()  # a connector
                or folded in _CONNECTORS  # "The Beatles"
                or folded in _HONORIFICS
                or (initial and folded in _LEADING_WORDS)  # "Sounds Amazing Caroline"
                or (initial and len(run) > 1 and _looks_common(word))  # "Adding NYC"
            ):
                del run[0]
            else:
                break
        if len(run) > 1:
            label = " ".join(text[run[0][0] : run[-1][1]].split())
            names.append((run[0][0], label, False))
        elif run:
            start, _, word, initial = run[0]
            if len(word) > 1 and not _is_common(word.casefold()):
                names.append((start, word, initial and _looks_common(word)))
        run.clear()

    at_start = True  # no word that could start a name yet in this sentence
    prev_end = 0
    prev_word = ""
    for match in _TOKEN_RE.finditer(scan):
        start, token = match.start(), match.group()
        if start < prev_end:
            continue  # inside a dotted acronym
        gap = scan[prev_end:start]
        prev_end = match.end()
        if token.islower():  # the fast path: most tokens are lowercase words
            prev_word = token
            if run:
                if connectors < 2 and token in _CONNECTORS and _SPACE_RE.fullmatch(gap):
                    run.append((start, prev_end, token, False))
                    connectors += 1
                    continue
                flush()
                connectors = 0
            if token not in _NON_ENTITIES:
                at_start = False
            elif _BOUNDARY_RE.search(gap):
                at_start = True
            continue
        if len(token) == 1 and scan[prev_end : prev_end + 1] == ".":
            dotted = _DOTTED_RE.match(scan, start)
            if dotted:
                token = dotted.group()
                prev_end = dotted.end()
        cls, word = _classify(token)
        folded = word.casefold()
        if gap == " " or _SPACE_RE.fullmatch(gap) or (run and _AMPERSAND_RE.fullmatch(gap)):
            if run and run[-1][2][-1] == "." and folded in _LEADING_WORDS:
                flush()  # "in the U.S. Then we": the acronym's period ended the sentence
                connectors = 0
                at_start = True
        elif (
            cls == _CAP
            and folded not in _LEADING_WORDS
            and _INITIAL_GAP_RE.fullmatch(gap)
            and (
                prev_word.casefold() in _HONORIFICS
                or prev_word.casefold() in _NAME_ABBREVIATIONS
                or (len(prev_word) == 1 and prev_word.isupper() and len(run) > 1)
            )
        ):
            pass  # "Dr. Smith", "John F. Kennedy": that period does not end a sentence
        else:
            if run:
                flush()
                connectors = 0
            if _BOUNDARY_RE.search(gap):
                at_start = True
        prev_word = word
        if cls == _CAP and run and connectors == 0 and folded in _CONNECTORS:
            cls = _CONNECTOR  # "Lord Of The Rings"
        if cls == _CONNECTOR and run and connectors < 2:
            run.append((start, start + len(word), word, False))
            connectors += 1
            continue
        if cls != _CAP:
            if run:
                flush()
                connectors = 0
            if cls != _BREAK:
                at_start = False
            continue
        connectors = 0
        run.append((start, start + len(word), word, at_start))
        if not at_start:
            confirmed.add(folded)
        # A word after "The" or after a name is not sentence-initial; one after "Hey" or
        # "Sounds" still is, for the suffix rule.
        if folded == "the" or folded not in _LEADING_WORDS:
            at_start = False
        if len(word) < len(token):
            flush()  # a possessive ends the name: "Caroline's Mom"
    if run:
        flush()

    for position, label, unconfirmed in names:
        if not unconfirmed or label.casefold() in confirmed:
            found.append((position, label, "name"))
    found.sort(key=lambda item: item[0])

    entities: dict[str, Entity] = {}
    for _, label, kind in found:
        key = _key(label)
        if len(key) < 2 or key.isdigit() or key in entities:
            continue
        entities[key] = Entity(key=key, label=label, kind=kind)
        if len(entities) >= max_entities:
            break
    return list(entities.values())
