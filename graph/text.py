"""Words worth matching: query terms for the stores' full-text indexes, and the
analysed (stemmed) terms of the in-memory BM25 index (:mod:`hippograph.graph.lexical`).

Stopwords are dropped because an OR over "the" matches every memory: it adds no
ranking signal and makes the lexical seed cost grow with the namespace. Stemming is the
Porter algorithm (PyStemmer, the Snowball C implementation), the one SQLite FTS5's
``porter`` tokenizer uses, so both indexes see "groups" and "group" alike.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

import Stemmer

__all__ = ["STOPWORDS", "analyze", "passages", "query_terms"]

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just let me more most my myself no nor not of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves s t don doesn didn isn wasn aren weren won wouldn shouldn
    couldn ve ll re d m o y also get got ever really yes yeah oh hey hi ok okay
    """.split()
)

_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str, *, max_terms: int = 32) -> list[str]:
    """Lowercased, de-duplicated non-stopword terms of ``text``, in order.

    >>> query_terms("When did Caroline go to the LGBTQ support group?")
    ['caroline', 'go', 'lgbtq', 'support', 'group']
    """
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.casefold()):
        word = match.group()
        if word in STOPWORDS or word in seen or (len(word) == 1 and not word.isdigit()):
            continue
        seen[word] = None
        if len(seen) >= max_terms:
            break
    return list(seen)


_STEMMER = Stemmer.Stemmer("porter")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def analyze(text: str) -> list[str]:
    """Stemmed, lowercased non-stopword terms of ``text``, with repeats (term counts
    matter to BM25).

    >>> analyze("The groups were grouping; the group!")
    ['group', 'group', 'group']
    """
    return [
        _stem(word)
        for word in _WORD.findall(text.casefold())
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit())
    ]


# "Caroline: ...", "user: ...": a short label before a colon that says who is speaking.
_LABEL = re.compile(r"^\s*([^\s:.!?][^:\n.!?]{0,39}):[ \t]+(?=\S)")
# A sentence ends at . ! ? or … (with closing quotes or brackets) followed by space, or
# at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*[ \t]+|\s*\n\s*")


def passages(content: str, *, max_passages: int = 16, min_chars: int = 20) -> list[str]:
    """The sentences of ``content`` as passages that get their own vectors, or ``[]``
    when it is a single passage (its whole vector serves).

    A long memory's vector is the average of everything it says, so a question about one
    of its sentences finds it weakly. Each passage keeps the memory's leading speaker
    label ("Caroline: "): a sentence without its speaker loses who it is about. Pieces
    shorter than ``min_chars`` join the next one (the last joins the previous), so
    "Thanks!" never stands alone; more than ``max_passages`` are grouped evenly.

    >>> passages("Jon: I took a trip to Rome last week. The food there was great!")
    ['Jon: I took a trip to Rome last week.', 'Jon: The food there was great!']
    >>> passages("Short one.")
    []
    """
    label = ""
    body = content
    found = _LABEL.match(content)
    if found and len(found.group(1).split()) <= 4:
        label = found.group(1).strip() + ": "
        body = content[found.end() :]
    pieces = [p.strip() for p in _SENTENCE_END.split(body) if p and p.strip()]
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        text = f"{carry} {piece}" if carry else piece
        if len(text) < min_chars:
            carry = text
            continue
        merged.append(text)
        carry = ""
    if carry:
        if merged:
            merged[-1] = f"{merged[-1]} {carry}"
        else:
            merged.append(carry)
    if len(merged) < 2:
        return []
    if len(merged) > max_passages:
        bounds = [round(i * len(merged) / max_passages) for i in range(max_passages + 1)]
        merged = [" ".join(merged[a:b]) for a, b in itertools.pairwise(bounds)]
    return [label + text for text in merged]
