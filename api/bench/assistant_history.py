"""A synthetic personal-assistant history: what an assistant remembers about its user
over months of daily use, and questions about the user's facts. Pure data, seeded.

The user (:data:`USER`, named in most memories: a hub entity) states about 25 persona
facts early on (family and friends, pet, address, employer, manager, phone, allergy,
diet, tastes, recurring appointments, birthdays); about 30% of the facts that can change
are later restated with a new value in natural wording ("Actually, the dentist
appointment moved to ..."). Around them are 2-4 chit-chat memories on most days
(meals, weather, errands, work notes, small talk) that mention the same people, pet,
city and employer, so a fact is not trivially told apart from the chatter. Each
memory carries its simulated time (``occurred_at``) and one session per day.

Persona facts are stored as ``kind="fact"`` except the appointments, which an
assistant would note as events; the allergy and the medication are important
(``importance`` 0.9). Each fact has one question, phrased differently from the
memory; an updated fact's question expects the newest version and records the stale
one.

``scale`` grows the history: chit-chat per day times ``scale``, and three facts
(city, job, birthday; the first two may be updated) for each of ``25 * (scale - 1) / 3``
friends. Used by ``hippograph bench assistant`` and ``tests/lifecycle``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hippograph.graph import MemoryInput, MemoryKind

__all__ = ["USER", "History", "Item", "Question", "generate_history"]

USER = "Maya"
DAYS_PER_MONTH = 30
UPDATE_SHARE = 0.30
ACTIVE_DAY_SHARE = 0.62  # days on which the user talks to the assistant at all
FACTS_BASE = 25


def _pool(text: str) -> tuple[str, ...]:
    """Values written as ``"a | b | c"`` (one short line for many)."""
    return tuple(v.strip() for v in text.split("|"))


CITIES = (
    "Berlin Munich Hamburg Vienna Zurich Lisbon Madrid Barcelona Rome Milan Paris Lyon "
    "Amsterdam Rotterdam Copenhagen Oslo Stockholm Helsinki Dublin Edinburgh Prague Krakow "
    "Budapest Toronto Montreal Boston Chicago Denver Seattle Austin"
).split()
FEMALE = (
    "Anna Clara Ingrid Rosa Helena Priya Nora Ines Marta Elif Chloe Hannah Greta Lucia Freya "
    "Mila Signe Zara Beatriz Yara"
).split()
MALE = (
    "Daniel Jonas Felix Oskar Tom Lukas Leo Ravi Sven Yusuf Amir Mateo Omar Theo Karim Jasper "
    "Arjun Tobias Niko Emil"
).split()
FIRST = FEMALE + MALE
LAST = (
    "Patel Okafor Novak Brennan Haddad Lindgren Moreau Castillo Kowalski Tanaka Fischer "
    "Romano Svensson Duarte Keller Nakamura Oyelaran Petrov Quinn Varga"
).split()
COMPANIES = _pool(
    "Finch Analytics | Northwind Logistics | Bluepeak Software | Harbor Health | Larkspur "
    "Media | Copperleaf Energy | Meridian Bank | Tidewater Labs | Ashgrove Consulting | "
    "Brightline Robotics"
)
TITLES = _pool(
    "data analyst | product manager | UX designer | backend engineer | marketing lead | "
    "project coordinator | financial controller | research scientist"
)
JOBS = (
    "nurse architect chef teacher electrician pharmacist photographer lawyer carpenter "
    "paramedic journalist translator physiotherapist baker librarian"
).split()
STREETS = _pool(
    "Elm Street | Birch Road | Harbour Lane | Maple Avenue | Kingsway | Linden Close | "
    "Mill Road | Orchard Row | Station Street | Willow Crescent"
)
BREEDS = ("golden retriever", "border collie", "beagle", "dachshund", "labrador", "corgi")
PETS = ("Biscuit", "Pepper", "Juniper", "Waffles", "Ziggy", "Mochi", "Bruno")
ALLERGENS = ("peanuts", "shellfish", "penicillin", "sesame", "tree nuts", "bee stings")
DIETS = ("vegetarian", "vegan", "pescatarian")
COFFEE = _pool(
    "black with no sugar | as a flat white with oat milk | as a double espresso | as a "
    "cappuccino with cinnamon on top | iced, with almond milk"
)
CUISINES = ("Thai", "Ethiopian", "Georgian", "Japanese", "Mexican", "Lebanese", "Korean")
INSTRUMENTS = ("cello", "violin", "clarinet", "piano", "bass guitar", "saxophone")
LANGUAGES = ("Japanese", "Portuguese", "Italian", "Korean", "Dutch", "Greek", "Turkish")
CARS = ("Honda Civic", "Toyota Corolla", "Volkswagen Golf", "Ford Focus", "Mazda 3", "Kia Niro")
COLORS = ("blue", "red", "silver", "dark green", "white", "black")
CLASSES = ("yoga", "pilates", "bouldering", "salsa", "spin", "pottery")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
GYMS = ("Ironworks Gym", "Pulse Fitness", "Riverside Leisure Centre", "Core Studio")
SUBJECTS = ("medicine", "law", "mechanical engineering", "marine biology", "economics")
MEDS = ("vitamin D", "levothyroxine", "an iron supplement", "magnesium tablets")
HOMETOWNS = ("Duluth", "Aberdeen", "Bergen", "Graz", "Galway", "Ghent", "Bremen")
HOURS = ("8am", "9am", "10am", "11am", "2pm", "3pm", "4pm", "5pm", "6pm", "7pm")


@dataclass(frozen=True, slots=True)
class Item:
    """One memory of the history, in time order. ``role`` is ``fact``, ``update`` (a
    fact restated with a new value) or ``chat``; ``fact`` names the fact it states."""

    id: str
    content: str
    occurred_at: datetime
    session_id: str
    kind: MemoryKind = MemoryKind.EVENT
    importance: float = 0.5
    role: str = "chat"
    fact: str | None = None

    def to_input(self) -> MemoryInput:
        return MemoryInput(
            content=self.content,
            id=self.id,
            kind=self.kind,
            session_id=self.session_id,
            occurred_at=self.occurred_at,
            importance=self.importance,
        )


@dataclass(frozen=True, slots=True)
class Question:
    """A question about one fact: ``expected_id`` is the memory stating its current value;
    ``stale_id`` the one it replaced (None when the fact never changed)."""

    text: str
    fact: str
    expected_id: str
    stale_id: str | None = None


@dataclass(slots=True)
class History:
    memories: list[Item]
    questions: list[Question]
    start: datetime
    end: datetime
    user: str = USER
    counts: dict[str, int] = field(default_factory=dict)

    def days(self) -> list[list[Item]]:
        """The memories grouped by session (one per simulated day), in time order."""
        grouped: dict[str, list[Item]] = {}
        for item in self.memories:
            grouped.setdefault(item.session_id, []).append(item)
        return list(grouped.values())


@dataclass(slots=True)
class _Fact:
    """A fact template filled with values: how it is stated, asked and restated."""

    key: str
    state: str
    question: str
    update: str | None = None  # None: this fact never changes
    kind: MemoryKind = MemoryKind.FACT
    importance: float = 0.5
    after: Callable[[], None] | None = None  # applies the new value to the persona


def _persona(rng: random.Random, start: datetime, days: int) -> tuple[dict[str, str], list[_Fact]]:
    """The persona's values (``now``: current ones, changed by updates as they happen)
    and its facts with their updated wording."""
    women, men = rng.sample(FEMALE, 3), rng.sample(MALE, 1)
    anyone = rng.sample([n for n in FIRST if n not in women + men], 5)
    names = [women[0], men[0], anyone[0], women[1], anyone[1], anyone[2], anyone[3], women[2]]
    cities = rng.sample(CITIES, 6)
    v: dict[str, str] = {
        "sister": names[0],
        "brother": names[1],
        "partner": names[2],
        "mother": names[3],
        "friend": names[4],
        "manager": names[5],
        "manager2": names[6],
        "niece": names[7],
        "city": cities[0],
        "home": cities[1],
        "sister_city": cities[2],
        "sister_city2": cities[3],
        "brother_city": cities[4],
        "friend_city": cities[5],
        "pet": rng.choice(PETS),
        "company": rng.choice(COMPANIES),
        "gym": rng.choice(GYMS),
    }
    u = USER
    two = lambda pool: rng.sample(pool, 2)  # noqa: E731
    dentist = f"Dr. {rng.choice(LAST)}"
    gp = f"Dr. {rng.choice(LAST)}"
    company2 = rng.choice([c for c in COMPANIES if c != v["company"]])
    street, street2 = two(STREETS)
    phone, phone2 = (f"+49 151 {rng.randint(1000, 9999)} {rng.randint(100, 999)}" for _ in "ab")
    title = rng.choice(TITLES)
    diet = rng.choice(DIETS)
    coffee, coffee2 = two(COFFEE)
    lang, lang2 = two(LANGUAGES)
    (color, color2), (car, car2) = two(COLORS), two(CARS)
    klass = rng.choice(CLASSES)
    (day1, day2), (hour1, hour2) = two(WEEKDAYS), two(HOURS)
    subject, subject2 = two(SUBJECTS)
    job, job2 = two(JOBS)
    gym2 = rng.choice([g for g in GYMS if g != v["gym"]])
    base = start + timedelta(days=days // 2 + rng.randint(0, days // 3))
    appt, appt2 = base, base + timedelta(days=rng.randint(5, 12))

    def when(d: datetime) -> str:
        return f"{d:%B} {d.day}"

    def bday() -> str:
        return when(start + timedelta(days=rng.randint(0, 364)))

    def setter(key: str, value: str) -> Callable[[], None]:
        return lambda: v.__setitem__(key, value)

    facts = [
        _Fact(
            "sister_city",
            f"{u}'s sister {v['sister']} lives in {v['sister_city']}.",
            f"Which city is {v['sister']} based in these days?",
            f"{v['sister']} moved to {v['sister_city2']}; {u} says she loves the new flat.",
            after=setter("sister_city", v["sister_city2"]),
        ),
        _Fact(
            "brother_study",
            f"{u}'s younger brother {v['brother']} studies {subject} at university in "
            f"{v['brother_city']}.",
            f"What subject is {v['brother']} taking at uni?",
            f"{v['brother']} switched from {subject} to {subject2}, {u} told me.",
        ),
        _Fact(
            "partner_job",
            f"{u}'s partner {v['partner']} works as a {job}.",
            f"What does {v['partner']} do for a living?",
            f"{v['partner']} quit being a {job} and now works as a {job2}.",
        ),
        _Fact(
            "mother_birthday",
            f"{u}'s mom {v['mother']} has her birthday on {bday()}.",
            f"When should {u} call {v['mother']} to wish her many happy returns?",
        ),
        _Fact(
            "best_friend",
            f"{v['friend']} has been {u}'s best friend since school and is an architect in "
            f"{v['friend_city']}.",
            f"Who is {u}'s closest friend from her school days?",
        ),
        _Fact(
            "pet",
            f"{u} has a {rng.choice(BREEDS)} called {v['pet']}.",
            f"What breed of dog does {u} own?",
        ),
        _Fact(
            "address",
            f"{u} lives at {rng.randint(2, 90)} {street}, {v['home']}.",
            f"What is {u}'s home address?",
            f"{u} moved into a new apartment at {rng.randint(2, 90)} {street2}.",
        ),
        _Fact("hometown", f"{u} grew up in {rng.choice(HOMETOWNS)}.", f"Where was {u} raised?"),
        _Fact(
            "employer",
            f"{u} works at {v['company']} as a {title}.",
            f"Which company employs {u}?",
            f"{u} accepted an offer from {company2} and started there on Monday.",
            after=setter("company", company2),
        ),
        _Fact(
            "manager",
            f"{u}'s manager at work is {v['manager']}.",
            f"Who does {u} report to?",
            f"{u} has a new boss now: {v['manager2']} took over the team.",
            after=setter("manager", v["manager2"]),
        ),
        _Fact(
            "phone",
            f"{u}'s mobile number is {phone}.",
            f"What number can {u} be reached on?",
            f"{u} got a new phone number, it's {phone2} now.",
        ),
        _Fact(
            "allergy",
            f"{u} is allergic to {rng.choice(ALLERGENS)} and carries an antihistamine.",
            f"Is there anything {u} must avoid because of an allergic reaction?",
            importance=0.9,
        ),
        _Fact(
            "diet",
            f"{u} has been {diet} for two years.",
            f"Does {u} eat meat?",
            f"{u} is not {diet} anymore; she eats chicken and fish again.",
        ),
        _Fact(
            "coffee",
            f"{u} takes her coffee {coffee}.",
            f"How should I order {u}'s coffee?",
            f"{u} switched her coffee order: now she has it {coffee2}.",
        ),
        _Fact(
            "cuisine",
            f"{u}'s favourite cuisine is {rng.choice(CUISINES)} food.",
            f"What kind of restaurant would {u} enjoy most?",
        ),
        _Fact(
            "instrument",
            f"{u} plays the {rng.choice(INSTRUMENTS)} in a community orchestra.",
            f"Which musical instrument does {u} play?",
        ),
        _Fact(
            "language",
            f"{u} is learning {lang} in evening classes.",
            f"What foreign language is {u} studying?",
            f"{u} dropped {lang} and signed up for a {lang2} course instead.",
        ),
        _Fact(
            "car",
            f"{u} drives a {color} {car}.",
            f"What vehicle does {u} have?",
            f"{u} sold the {car} and bought a {color2} {car2}.",
        ),
        _Fact(
            "dentist",
            f"{u} booked a dentist appointment with {dentist} on {when(appt)} at {hour1}.",
            f"When is {u}'s next dental checkup?",
            f"Actually, the dentist appointment moved to {when(appt2)} at {hour2}.",
            kind=MemoryKind.EVENT,
        ),
        _Fact(
            "class",
            f"{u} goes to {klass} class every {day1} at {hour1}.",
            f"On which weekday does {u} have her {klass} session?",
            f"{klass.capitalize()} moved to {day2}s at {hour2} from now on.",
            kind=MemoryKind.EVENT,
        ),
        _Fact(
            "book_club",
            f"{u}'s book club meets on the first {day2} of each month at {v['friend']}'s place.",
            f"Where does {u}'s reading group get together?",
            kind=MemoryKind.EVENT,
        ),
        _Fact(
            "doctor",
            f"{u}'s family doctor is {gp} at the Riverside practice.",
            f"Who is {u}'s GP?",
        ),
        _Fact(
            "medication",
            f"{u} takes {rng.choice(MEDS)} every morning, prescribed last year.",
            f"Which daily medicine is {u} on?",
            importance=0.9,
        ),
        _Fact(
            "anniversary",
            f"{u} and {v['partner']} celebrate their anniversary on {bday()}.",
            f"When is the anniversary of {u} and {v['partner']}?",
        ),
        _Fact(
            "gym",
            f"{u} has a membership at {v['gym']}.",
            f"Where does {u} work out?",
            f"{u} cancelled the {v['gym']} membership and joined {gym2}.",
            after=setter("gym", gym2),
        ),
        _Fact(
            "niece_birthday",
            f"{u}'s niece {v['niece']} turns {rng.randint(4, 12)} on {bday()}.",
            f"When is {v['niece']}'s birthday party?",
        ),
    ]
    return v, facts


def _friend_facts(rng: random.Random, count: int, taken: set[str], start: datetime) -> list[_Fact]:
    """Three facts about each of ``count`` more friends (the ``scale`` above 1)."""
    facts: list[_Fact] = []
    pairs = [f"{a} {b}" for a in FIRST for b in LAST]
    rng.shuffle(pairs)
    names = [p for p in pairs if p.split()[0] not in taken][:count]
    for i, name in enumerate(names):
        city, city2 = rng.sample(CITIES, 2)
        job, job2 = rng.sample(JOBS, 2)
        day = start + timedelta(days=rng.randint(0, 364))
        facts += [
            _Fact(
                f"friend{i}_city",
                f"{USER}'s friend {name} lives in {city}.",
                f"Where is {name} living now?",
                f"{name} relocated to {city2} for a fresh start.",
            ),
            _Fact(
                f"friend{i}_job",
                f"{name} works as a {job}.",
                f"What is {name}'s occupation?",
                f"{name} changed careers and is a {job2} now.",
            ),
            _Fact(
                f"friend{i}_birthday",
                f"{name}'s birthday is on {day:%B} {day.day}.",
                f"On what date was {name} born?",
            ),
        ]
    return facts


# Chit-chat: a template of CHAT with each {slot} drawn from its pool in WORDS (a slot
# named after a persona value takes the current one). "item" and "shop" come in pairs.
WORDS = {
    "food": _pool(
        "ramen | a lentil soup | leftover curry | a Caesar salad | avocado toast | a burrito "
        "| pad thai | a mushroom risotto | falafel wraps | sushi | a cheese toastie | "
        "pancakes | porridge with berries | a Greek salad | dumplings | shakshuka | a bagel | "
        "minestrone | tomato pasta | a baked potato"
    ),
    "meal": _pool("breakfast | lunch | dinner"),
    "where": _pool("at home | at the office | with {partner} | near the station | on the go"),
    "weather": _pool("rainy | foggy | sunny and warm | freezing | windy | humid | drizzly"),
    "doing": _pool(
        "stayed in with a book | took {pet} for a long walk | cycled to work anyway | took "
        "the tram instead of walking | had a picnic in the park | worked from home"
    ),
    "task": _pool(
        "the quarterly report | a client presentation | the budget review | onboarding a new "
        "colleague | a bug in the billing dashboard | planning the team offsite | interviews "
        "for an open position | the move to the new CRM"
    ),
    "topic": _pool(
        "a documentary about octopuses | the latest season of a crime series | a podcast "
        "about sleep | last night's football match | a novel she can't put down | the new "
        "bakery down the street | a board game night | the price of train tickets | plans for "
        "a summer holiday | a funny video of a cat"
    ),
    "show": _pool(
        "a crime series | an old western | a cooking contest | a nature documentary | a "
        "stand-up special | a sci-fi film"
    ),
    "book": _pool(
        "a thriller | a biography of a chess player | a fantasy trilogy | a poetry book | a "
        "history of the Silk Road | a cookbook | a short story collection"
    ),
    "mood": _pool("tired | cheerful | stressed | relaxed | a bit under the weather | energetic"),
    "day": WEEKDAYS,
    "thing": _pool("laptop | bike | rain jacket | pair of running shoes | desk lamp | kettle"),
    "chewed": _pool("left slipper | phone charger | favourite scarf | TV remote | new sneakers"),
    "fixable": _pool("wobbly shelf | dripping tap | squeaky door | broken blind | doorknob"),
    "chore": _pool(
        "water the plants | pay the electricity bill | renew the parking permit | call the "
        "landlord | book a haircut | return the library books"
    ),
    "park": _pool("park | river path | dog meadow | old cemetery woods"),
    "met": _pool("another dog owner | a neighbour | an old colleague | a very friendly puppy"),
    "part": _pool("morning | afternoon | evening | weekend"),
    "hours": tuple(str(n) for n in range(3, 10)),
    "km": tuple(str(n) for n in range(2, 7)),
    "late": tuple(str(n) for n in range(5, 41, 5)),
    "train": tuple(f"{h}:{m}" for h in range(6, 10) for m in ("05", "20", "35", "50")),
    "cuisine": CUISINES,
    "plan": _pool("a weekend hike | a city trip | a concert | a camping trip | a cooking class"),
    "month": _pool("March | April | May | June | July | August | September"),
}
ERRANDS = (
    ("a parcel", "post office"),
    ("new light bulbs", "hardware store"),
    ("groceries", "supermarket"),
    ("a prescription", "pharmacy"),
    ("her dry cleaning", "dry cleaner"),
    ("a birthday card", "stationery shop"),
    ("sourdough bread", "bakery"),
    ("dog food for {pet}", "pet shop"),
)
CHAT = (
    "{u} had {food} for {meal} {where}.",
    "{u}: I made {food} for {meal} tonight, not bad at all.",
    "It was {weather} in {home} today, so {u} {doing}.",
    "{u} picked up {item} from the {shop} on the way home.",
    "{u} spent the morning at {company} on {task}.",
    "{u} said {manager} wants an update on {task} by {day}.",
    "{u} is {mood} today after a long week.",
    "{u} and {partner} watched {show} on the sofa.",
    "{u} chatted about {topic} and laughed a lot.",
    "{u} called {sister} and they talked about {topic}.",
    "{pet} chewed {u}'s {chewed} while she was out.",
    "{u} asked me to remind her to {chore} on {day}.",
    "{u} went for a run along the river before work; it was {weather}.",
    "{u} is thinking about buying a new {thing}.",
    "{u} had a coffee with {friend} and caught up on {topic}.",
    "{u} had a long meeting at {company} about {task}.",
    "{u} wants to try a recipe for {food} this weekend.",
    "{u} complained that the {train} train into {home} was {late} minutes late.",
    "{u} booked a table for {meal} with {partner} on {day}.",
    "{u} finally fixed the {fixable} this {part}.",
    "{u} forgot her umbrella and got soaked; it was {weather}.",
    "{u} noted that {manager} praised her work on {task}.",
    "{u} took {pet} to the {park} and met {met}.",
    "{u} started reading {book} before bed.",
    "{u} slept {hours} hours last night and feels {mood}.",
    "{u} tried a new {cuisine} place in {home} for {meal}.",
    "{u} missed the bus and walked {km} kilometres home.",
    "{u} and {friend} are planning {plan} for {month}.",
    "{u} spent {hours} hours on {task} and is glad it is done.",
)


def generate_history(
    start: datetime, *, months: int = 6, seed: int = 0, scale: float = 1.0
) -> History:
    """A deterministic history of ``months`` (30 days each) from ``start`` (aware).

    >>> from datetime import UTC
    >>> h = generate_history(datetime(2024, 1, 1, tzinfo=UTC), months=1, seed=1)
    >>> h.counts["facts"], h.counts["questions"] == h.counts["facts"]
    (26, True)
    """
    if start.tzinfo is None:
        raise ValueError("start: must be timezone-aware")
    if months < 1 or scale < 1:
        raise ValueError("months and scale: must be at least 1")
    rng = random.Random(seed)
    days = months * DAYS_PER_MONTH
    values, facts = _persona(rng, start, days)
    extra = round(FACTS_BASE * (scale - 1) / 3)
    facts += _friend_facts(rng, extra, {v for v in values.values()}, start)
    first_window = max(3, min(21, days // 6))
    stated = {f.key: rng.randrange(first_window) for f in facts}
    updatable = [f for f in facts if f.update is not None]
    updated = rng.sample(updatable, min(len(updatable), round(UPDATE_SHARE * len(facts))))
    lo, hi = max(first_window + 2, days // 4), max(first_window + 3, days * 9 // 10)
    update_day = {f.key: rng.randrange(lo, hi) for f in updated}

    memories: list[Item] = []
    questions: dict[str, Question] = {}
    serial = 0
    for day in range(days):
        date = start + timedelta(days=day)
        session = f"day-{date:%Y-%m-%d}"
        todo: list[tuple[int, str, _Fact | None]] = []  # (minute of day, role, fact)
        todo += [(rng.randrange(480, 1320), "fact", f) for f in facts if stated[f.key] == day]
        todo += [
            (rng.randrange(480, 1320), "update", f) for f in updated if update_day[f.key] == day
        ]
        if rng.random() < ACTIVE_DAY_SHARE or todo:
            chats = sum(rng.randint(2, 4) for _ in range(int(scale))) + (
                rng.randint(2, 4) if rng.random() < scale - int(scale) else 0
            )
            todo += [(rng.randrange(420, 1380), "chat", None) for _ in range(chats)]
        for minute, role, fact in sorted(todo, key=lambda t: (t[0], t[1])):
            serial += 1
            at = date + timedelta(minutes=minute, seconds=serial % 60)
            if fact is None:
                memories.append(Item(f"chat-{serial:05d}", _chat(rng, values), at, session))
                continue
            text, version = (fact.state, 1) if role == "fact" else (str(fact.update), 2)
            item = Item(
                f"{fact.key}-v{version}",
                text,
                at,
                session,
                fact.kind,
                fact.importance,
                role,
                fact.key,
            )
            memories.append(item)
            if role == "fact":
                questions[fact.key] = Question(fact.question, fact.key, item.id)
            else:
                old = questions[fact.key]
                questions[fact.key] = Question(old.text, fact.key, item.id, old.expected_id)
                if fact.after is not None:
                    fact.after()
    roles = [m.role for m in memories]
    counts = {
        "memories": len(memories),
        "facts": roles.count("fact"),
        "updates": roles.count("update"),
        "chat": roles.count("chat"),
        "questions": len(questions),
        "days": days,
        "active_days": len({m.session_id for m in memories}),
    }
    end = start + timedelta(days=days)
    return History(memories, [questions[f.key] for f in facts], start, end, counts=counts)


def _chat(rng: random.Random, values: dict[str, str]) -> str:
    """One chit-chat memory, its slots filled with the persona's current values."""
    slots = {name: rng.choice(pool) for name, pool in WORDS.items()} | values
    slots["u"] = USER
    slots["item"], slots["shop"] = rng.choice(ERRANDS)
    # a value may hold a slot ("with {partner}"): fill twice
    return rng.choice(CHAT).format(**slots).format(**slots)
