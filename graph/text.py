"""Words worth matching: query terms for the stores' full-text indexes, and the
analysed (stemmed) terms of the in-memory BM25 index (:mod:`graph.lexical`).

Stopwords are dropped because an OR over "the" matches every memory: it adds no
ranking signal and makes the lexical seed cost grow with the namespace. Stemming is the
Porter algorithm (PyStemmer, the Snowball C implementation), the one SQLite FTS5's
``porter`` tokenizer uses, so both indexes see "groups" and "group" alike.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

__all__ = ["STOPWORDS", "analyze", "query_terms"]

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
