"""Deterministic, fast generation of realistic local rosters and incoming transfers for matching.

Names follow US-like frequencies: a Zipf-weighted head of common given names and surnames (with
Hispanic, Asian and other names in proportion) and a long tail of generated surnames, so that blocking
keys see real-world skew (many Garcias and Nguyens, most families rarer). Families share a surname,
siblings have distinct birth dates and about 3% of families have twins. Hispanic families sometimes
carry both surnames, hyphenated or spaced.

Records are built without re-running StudentRecord's validation (they are valid by construction; a
test checks a sample): validation is what would otherwise keep this below 200,000 records a second, and
the 1,000,000-student benchmark reuses this module.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields
from datetime import date, timedelta
from itertools import accumulate

from protocol.matching import IncomingStudent
from protocol.name_similarity import compare_given
from protocol.nicknames import GROUPS
from protocol.roster import StudentRecord


def _words(text: str) -> list[str]:
    return text.split()


FEMALE = _words("""Olivia Emma Ava Sophia Isabella Charlotte Amelia Mia Harper Evelyn Abigail Emily Ella Elizabeth
Camila Luna Sofia Avery Mila Aria Scarlett Penelope Layla Chloe Victoria Madison Eleanor Grace Nora Riley
Zoey Hannah Hazel Lily Ellie Violet Lillian Zoe Stella Aurora Natalie Emilia Everly Leah Aubrey Willow
Addison Lucy Audrey Bella Nova Brooklyn Paisley Savannah Claire Skylar Isla Genesis Naomi Elena Caroline
Eliana Anna Maya Valentina Ruby Kennedy Ivy Ariana Aaliyah Cora Madelyn Alice Kinsley Hailey Gabriella
Allison Gianna Serenity Samantha Sarah Autumn Quinn Eva Piper Sophie Sadie Delilah Josephine Nevaeh
Adeline Arya Emery Lydia Clara Vivian Madeline Peyton Julia Rylee Brielle Reagan Natalia Jade Athena
Maria Leilani Everleigh Liliana Melanie Mackenzie Hadley Raelynn Kaylee Rose Arianna Isabelle Melody
Eliza Lyla Katherine Aubree Adalynn Kylie Faith Mary Margaret Ximena Iris Alexandra Jasmine Charlie
Amaya Taylor Isabel Ashley Khloe Ryleigh Alexa Amara Valeria Andrea Daisy Guadalupe Fernanda Daniela
Jimena Mariana Camille Renata Lucia Catalina Alejandra Gabriela Esmeralda Yesenia Jessica Jennifer
Stephanie Priya Ananya Aanya Saanvi Diya Mei Lin Xin Yuna Hana Linh Anh Thao Jiwoo Seoyeon Fatima Aisha
Amina Zainab Nadia Leila Yasmin""")
MALE = _words("""Liam Noah Oliver Elijah William James Benjamin Lucas Henry Alexander Mason Michael Ethan Daniel
Jacob Logan Jackson Levi Sebastian Mateo Jack Owen Theodore Aiden Samuel Joseph John David Wyatt Matthew
Luke Asher Carter Julian Grayson Leo Jayden Gabriel Isaac Lincoln Anthony Hudson Dylan Ezra Thomas
Charles Christopher Jaxon Maverick Josiah Isaiah Andrew Elias Joshua Nathan Caleb Ryan Adrian Miles
Eli Nolan Christian Aaron Cameron Ezekiel Colton Luca Landon Hunter Jonathan Santiago Axel Easton Cooper
Jeremiah Angel Roman Connor Jameson Robert Greyson Jordan Ian Carson Jaxson Leonardo Nicholas Dominic
Austin Everett Brooks Xavier Kai Jose Parker Adam Jace Wesley Kayden Silas Bennett Declan Waylon
Weston Evan Emmett Micah Ryder Beau Damian Brayden Gael Rowan Harrison Bryson Sawyer Amir Kingston
Jason Giovanni Vincent Ayden Chase Myles Diego Nathaniel Legend Jonah River Tyler Cole Braxton George
Milo Zachary Ashton Luis Jasper Kaiden Adriel Gavin Bentley Calvin Zion Juan Maxwell Max Ryker Carlos
Emmanuel Jayce Lorenzo Ivan Jude August Kevin Malachi Elliott Rhett Archer Karter Arthur Luka Elliot
Thiago Brandon Camden Justin Jesus Maddox King Theo Enzo Matias Emiliano Miguel Alejandro Francisco
Javier Fernando Ricardo Eduardo Rafael Manuel Jorge Andres Pedro Arjun Aarav Vihaan Rohan Wei Jun Hao
Minh Duc Khoa Minjun Jiho Hiroshi Kenji Omar Ali Yusuf Ibrahim Hamza""")
SURNAMES = _words("""Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez
Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams
Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz
Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson
Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray
Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins
Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero
Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant
Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez
McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford
Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer
Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels
Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold
Pierce Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson
Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards
Contreras Willis Carpenter Lawrence Sandoval Guerrero George Chapman Rios Estrada Ortega Watkins
Greene Nunez Wheeler Valdez Harper Burke Larson Santiago Maldonado Morrison Franklin Carlson Austin
Dominguez Carr Lawson Jacobs OBrien Lynch Singh Vega Bishop Montgomery Oliver Jensen Harvey Williamson
Gilbert Dean Sims Espinoza Howell Li Wong Reid Hanson Le Pham Huang Wang Zhang Liu Yang Park Choi Shah
Khan Kumar Ali Ahmed Hussain Tanaka Sato Suzuki Cohen Levy Rossi Kowalski Novak Murphy""")
HISPANIC = frozenset(
    _words("""Garcia Rodriguez Martinez Hernandez Lopez Gonzalez Perez Sanchez Ramirez Torres
Flores Rivera Gomez Diaz Cruz Reyes Morales Gutierrez Ortiz Ramos Chavez Mendoza Ruiz Alvarez Castillo
Jimenez Gonzales Vasquez Romero Moreno Herrera Medina Aguilar Castro Fernandez Vargas Guzman Mendez
Munoz Salazar Garza Soto Vazquez Santos Alvarado Delgado Pena Contreras Sandoval Guerrero Rios Estrada
Ortega Nunez Valdez Maldonado Dominguez Vega Espinoza""")
)
_SYLLABLES = (
    _words(
        "Ab Al Am Ar Bal Bar Bel Ber Bor Bran Cal Car Cas Dal Dor Dun El Em Es Fal Fen Fer Gal Gar Gor Hal Har "
        "Hol Ib Jan Kar Kes Kov Lan Lar Lin Mal Mar Mel Mor Nar Nor Ol Or Pal Pel Quin Ral Ros Sal Sel Sor Tal "
        "Tor Ul Val Ver Wal Wes Yar Zel"
    ),
    ["", "a", "e", "i", "o", "an", "er", "in", "ov", "el", "ar", "u"],
    _words(
        "son sen ski ska ez es ova berg ton ley ford man ini escu ida awa oto stein wick ell ard ach ovic enko "
        "quist holm ner by ham dale"
    ),
)
_GIVEN_SYLLABLES = (
    _words("Ka La Ma Na Ja Ta Da Sa Ra Za Ke Le Me Ne Je Te Bri Ca Cha Ari Ay Bre Kai Ky Ry Ty Jo Mi Ni Ro"),
    ["", "la", "le", "li", "ra", "ri", "na", "ni", "ya", "ve", "de", "ley"],
    _words("n h a e yn son den lyn ah iel on ie"),
)
SCHOOLS = {
    "E": ["Lincoln Elementary", "Jefferson Elementary", "Roosevelt Elementary", "Cesar Chavez Elementary"],
    "M": ["Washington Middle", "Kennedy Middle"],
    "H": ["Central High", "East High"],
}
SCHOOL_YEAR_START = date(2024, 9, 1)
_GRADES = ("PK", "KG", *(f"{n:02d}" for n in range(1, 13)))
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


def _mixture(head: list[str], tail: list[str], head_share: float, s: float, q: float) -> list[float]:
    """Cumulative weights for head + tail: Zipf(s, q) over the head, a flatter Zipf over the tail."""
    head_w = [1.0 / (rank + q) ** s for rank in range(len(head))]
    tail_w = [1.0 / (rank + 50.0) ** 0.5 for rank in range(len(tail))]
    scale_head, scale_tail = head_share / sum(head_w), (1 - head_share) / sum(tail_w)
    return list(accumulate([w * scale_head for w in head_w] + [w * scale_tail for w in tail_w]))


# The tails stand for the thousands of rarer names real rosters have: about a quarter of children's given
# names and half of surnames fall outside any short list of common ones. Shares and exponents are tuned
# so the top names land near US frequencies (Smith ~0.9% of people, the top given name ~0.6% of children).
_SURNAME_TAIL = [a + b + c for a in _SYLLABLES[0] for b in _SYLLABLES[1] for c in _SYLLABLES[2]]
_GIVEN_TAIL = [
    a + b + c for a in _GIVEN_SYLLABLES[0] for b in _GIVEN_SYLLABLES[1] for c in _GIVEN_SYLLABLES[2]
]
_FEMALE_POOL, _MALE_POOL = FEMALE + _GIVEN_TAIL, MALE + _GIVEN_TAIL
_SURNAME_POOL = SURNAMES + _SURNAME_TAIL
_F_CUM = _mixture(FEMALE, _GIVEN_TAIL, 0.75, 0.75, 12.0)
_M_CUM = _mixture(MALE, _GIVEN_TAIL, 0.75, 0.75, 12.0)
_S_CUM = _mixture(SURNAMES, _SURNAME_TAIL, 0.5, 0.75, 6.0)
_HISPANIC_LIST = [s for s in SURNAMES if s in HISPANIC]
# Birth dates of PK (4 on the school year's first day) to grade 12 (17), with the grade each one is in.
_BIRTHS = [SCHOOL_YEAR_START - timedelta(days=d) for d in range(4 * 365 + 1, 18 * 365 + 4)]
_DATES = [d.isoformat() for d in _BIRTHS]
_GRADE_OF = {}
for _d in _BIRTHS:
    _age = (
        SCHOOL_YEAR_START.year
        - _d.year
        - ((SCHOOL_YEAR_START.month, SCHOOL_YEAR_START.day) < (_d.month, _d.day))
    )
    _GRADE_OF[_d.isoformat()] = _GRADES[min(max(_age - 4, 0), len(_GRADES) - 1)]
_NICKNAMES = {g[0].capitalize(): [n.capitalize() for n in g[1:] if len(n) > 2] for g in GROUPS}
# Slot descriptors of StudentRecord in field order: setting them directly is what makes _record cheap.
_SETTERS = [getattr(StudentRecord, f.name).__set__ for f in fields(StudentRecord)]
_SCHOOLS_BY_GRADE = {
    grade: [(f"{band}{n}", name) for n, name in enumerate(SCHOOLS[band])]
    for grade in _GRADES
    for band in ["E" if grade in ("PK", "KG") or grade <= "05" else "M" if grade <= "08" else "H"]
}


def _record(*values: object) -> StudentRecord:
    """A StudentRecord from valid values in field order, sis_id to school_name without username and
    email, skipping re-validation (see the module docstring)."""
    record = object.__new__(StudentRecord)
    for setter, value in zip(_SETTERS, (*values[:10], "", "", *values[10:], None, "active"), strict=True):
        setter(record, value)
    return record


def _state_id(index: int, seed: int) -> str:
    # Multiplying by a prime coprime with the modulus is a bijection: unique ids without a set.
    return str(1_000_000_000 + (index * 7919 + seed * 104729) % 9_000_000_000)


def generate_roster(n: int, seed: int) -> list[StudentRecord]:
    """``n`` local students with SIS ids S0000000..., the same list for the same (n, seed)."""
    rng = random.Random(seed)
    # Bulk draws run at C speed; the loop below only assembles them.
    given = {
        "F": rng.choices(_FEMALE_POOL, cum_weights=_F_CUM, k=n),
        "M": rng.choices(_MALE_POOL, cum_weights=_M_CUM, k=n),
    }
    middle = {
        "F": rng.choices(_FEMALE_POOL, cum_weights=_F_CUM, k=n),
        "M": rng.choices(_MALE_POOL, cum_weights=_M_CUM, k=n),
    }
    surnames = rng.choices(_SURNAME_POOL, cum_weights=_S_CUM, k=n)
    dates = rng.choices(_DATES, k=n)
    records: list[StudentRecord] = []
    # A million new objects would trigger many useless collection passes: nothing here forms cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _families(n, seed, rng, given, middle, surnames, dates, records)
    finally:
        if collecting:
            gc.enable()
    return records


def _families(n: int, seed: int, rng: random.Random, given: dict[str, list[str]], middle: dict[str, list[str]],
              surnames: list[str], dates: list[str], records: list[StudentRecord]) -> None:  # fmt: skip
    random_ = rng.random
    i = 0
    while i < n:
        r = random_()
        size = min(n - i, 1 if r < 0.55 else 2 if r < 0.85 else 3 if r < 0.97 else 4)
        surname = surnames[i]
        if surname in HISPANIC and random_() < 0.12:
            second = rng.choice(_HISPANIC_LIST)
            if second != surname:
                surname = f"{surname}{'-' if random_() < 0.5 else ' '}{second}"
        twins = size > 1 and random_() < 0.06
        names: list[str] = []
        births: list[str] = []
        for k in range(size):
            idx = i + k
            sex = "F" if random_() < 0.49 else "M"
            name = given[sex][idx]
            twin = k == 1 and twins
            # Siblings get distinct names; twins names that no comparison could mistake for each other.
            while name in names or (twin and compare_given(name, names[0]).outcome != "differs"):
                name = rng.choice(FEMALE if sex == "F" else MALE)
            dob = births[0] if twin else dates[idx]
            while not twin and dob in births:
                dob = rng.choice(_DATES)
            names.append(name)
            births.append(dob)
            mid = middle[sex][idx] if random_() < 0.6 else ""
            nicknames = _NICKNAMES.get(name)
            preferred = rng.choice(nicknames) if nicknames and random_() < 0.03 else ""
            grade = _GRADE_OF[dob]
            if random_() < 0.02 and grade not in ("PK", "KG"):
                grade = _GRADES[_GRADES.index(grade) - 1]
            schools = _SCHOOLS_BY_GRADE[grade]
            school_id, school_name = schools[idx % len(schools)]
            sis_id = f"S{idx:07d}"
            records.append(
                _record(sis_id, sis_id, name, surname, "" if mid == name else mid, preferred, dob, sex, grade,
                        _state_id(idx, seed) if random_() < 0.95 else "", school_id, school_name)
            )  # fmt: skip
        i += size


# What generate_incoming plants by default, as fractions of n; the rest are unchanged ("exact") students
# with neither state id nor receiving SIS id, so that scoring does the work.
DEFAULT_VARIATIONS: Mapping[str, float] = {
    "state_id": 0.15, "receiving_sis_id": 0.05, "typo_given": 0.02, "typo_family": 0.02, "swapped_names": 0.01,
    "nickname": 0.02, "swapped_dob": 0.01, "dob_digit": 0.01, "hyphenated": 0.01, "wrong_sis_id": 0.005,
    "twin": 0.005, "duplicate": 0.005, "new": 0.1,
}  # fmt: skip


def _typo(name: str, rng: random.Random) -> str:
    """One realistic slip after the first letter: a wrong key, a lost, doubled or transposed letter."""
    while True:
        p = rng.randrange(1, len(name) - 1)
        op = rng.randrange(4)
        if op == 0:
            out = name[:p] + rng.choice(_KEYBOARD) + name[p + 1 :]
        elif op == 1:
            out = name[:p] + name[p + 1 :]
        elif op == 2:
            out = name[:p] + name[p] + name[p:]
        else:
            out = name[:p] + name[p + 1] + name[p] + name[p + 2 :]
        if out.lower() != name.lower():
            return out


def _day_typo(birth_date: str, rng: random.Random) -> str:
    """The same date with one digit of the day mistyped (and still a calendar date)."""
    day = birth_date[8:10]
    options = []
    for position in (0, 1):
        for digit in "0123456789":
            candidate = birth_date[:8] + (digit + day[1] if position == 0 else day[0] + digit)
            if candidate != birth_date and _is_date(candidate):
                options.append(candidate)
    return rng.choice(options)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _new_person(rng: random.Random, taken: Collection[tuple[str, str | None]]) -> dict[str, object]:
    while True:
        sex = rng.choice("FM")
        family = rng.choice(_SURNAME_TAIL)
        dob = rng.choice(_DATES)
        if (family, dob) not in taken:
            names = FEMALE if sex == "F" else MALE
            return {"given_name": rng.choice(names), "family_name": family, "birth_date": dob, "sex": sex,
                    "grade": _GRADE_OF[dob]}  # fmt: skip


def _eligible(kind: str, rec: StudentRecord, twins: set[tuple[str, str | None]]) -> bool:
    if kind == "typo_given":
        # With a same-named, same-born classmate a given-name typo is rightly left to a person.
        return (
            len(rec.given_name) >= 5
            and rec.given_name.isalpha()
            and (rec.family_name, rec.birth_date) not in twins
        )
    if kind == "typo_family":
        return len(rec.family_name) >= 5 and rec.family_name.isalpha()
    if kind == "nickname":
        return bool(_NICKNAMES.get(rec.given_name)) and not rec.preferred_name
    if kind == "swapped_dob":
        return rec.birth_date is not None and rec.birth_date[5:7] != rec.birth_date[8:10] <= "12"
    if kind == "hyphenated":
        return rec.family_name.isalpha()
    if kind == "state_id":
        return bool(rec.state_id)
    if kind == "twin":
        return (rec.family_name, rec.birth_date) not in twins
    return True


def _vary(kind: str, rec: StudentRecord, fields: dict[str, object], pool: Sequence[StudentRecord],
          rng: random.Random) -> str | None:  # fmt: skip
    """Plant ``kind`` into ``fields`` (a copy of rec's); return the SIS id matching should find."""
    if kind == "typo_given":
        fields["given_name"] = _typo(rec.given_name, rng)
    elif kind == "typo_family":
        fields["family_name"] = _typo(rec.family_name, rng)
    elif kind == "swapped_names":
        fields["given_name"], fields["family_name"] = rec.family_name, rec.given_name
    elif kind == "nickname":
        fields["given_name"] = rng.choice(_NICKNAMES[rec.given_name])
    elif kind == "swapped_dob":
        assert rec.birth_date is not None
        fields["birth_date"] = f"{rec.birth_date[:5]}{rec.birth_date[8:10]}-{rec.birth_date[5:7]}"
    elif kind == "dob_digit":
        assert rec.birth_date is not None
        fields["birth_date"] = _day_typo(rec.birth_date, rng)
    elif kind == "hyphenated":
        second = rng.choice([s for s in _HISPANIC_LIST if s != rec.family_name])
        fields["family_name"] = f"{rec.family_name}-{second}"
    elif kind == "state_id":
        fields["state_id"] = rec.state_id
    elif kind == "receiving_sis_id":
        fields["receiving_sis_id"] = rec.sis_id
    elif kind == "wrong_sis_id":
        other = rng.choice(pool)
        while other.family_name == rec.family_name or other.birth_date == rec.birth_date:
            other = rng.choice(pool)
        fields["receiving_sis_id"] = other.sis_id
    elif kind == "twin":
        fields["sex"] = rng.choice("FM")
        names = FEMALE if fields["sex"] == "F" else MALE
        name = rng.choice(names)
        while any(
            compare_given(name, n).outcome != "differs" for n in (rec.given_name, rec.preferred_name) if n
        ):
            name = rng.choice(names)
        fields.update(given_name=name, middle_name="", preferred_name="")
        return None
    elif kind != "exact":
        raise ValueError(f"unknown variation {kind!r}")
    return rec.sis_id


def generate_incoming(
    local: Sequence[StudentRecord],
    n: int,
    seed: int,
    *,
    variations: Mapping[str, float | int] | None = None,
    grade: str | None = None,
) -> list[tuple[IncomingStudent, str | None, str]]:
    """``n`` incoming students drawn from ``local`` (of one ``grade`` if given) with planted difficulties.

    ``variations`` maps a kind to a count (int) or a fraction of ``n`` (float); the remainder are "exact".
    Kinds: exact, state_id, receiving_sis_id, typo_given, typo_family, swapped_names, nickname,
    swapped_dob, dob_digit, hyphenated, wrong_sis_id (a receiving SIS id naming another student), twin (a
    new twin of a local student: expected None), new (not in the roster: expected None), duplicate (an
    earlier "exact" entry again, under another sender id and without middle name, placed last).
    Returns (student, SIS id matching should find or None, kind), deterministic for the same arguments.
    """
    rng = random.Random(seed)
    plan = DEFAULT_VARIATIONS if variations is None else variations
    counts = {kind: v if isinstance(v, int) else round(v * n) for kind, v in plan.items()}
    counts["exact"] = n - sum(counts.values())
    if counts["exact"] < counts.get("duplicate", 0):
        raise ValueError("variations leave too few exact students to duplicate")
    pool = [r for r in local if grade is None or r.grade == grade]
    shuffled = rng.sample(pool, min(len(pool), 4 * n + 100))
    per_family_dob: dict[tuple[str, str | None], int] = {}
    for r in local:
        key = (r.family_name, r.birth_date)
        per_family_dob[key] = per_family_dob.get(key, 0) + 1
    twins = {key for key, count in per_family_dob.items() if count > 1}
    used: set[str] = set()
    planted: list[tuple[dict[str, object], str | None, str]] = []
    for kind in sorted(k for k in counts if k != "duplicate"):
        position = 0
        for _ in range(counts[kind]):
            if kind == "new":
                planted.append((_new_person(rng, per_family_dob.keys()), None, kind))
                continue
            while shuffled[position].sis_id in used or not _eligible(kind, shuffled[position], twins):
                position += 1
            rec = shuffled[position]
            used.add(rec.sis_id)
            fields: dict[str, object] = {
                "given_name": rec.given_name, "family_name": rec.family_name, "middle_name": rec.middle_name,
                "preferred_name": rec.preferred_name, "birth_date": rec.birth_date, "sex": rec.sex,
                "grade": rec.grade, "school_name": "Riverside Academy",
            }  # fmt: skip
            planted.append((fields, _vary(kind, rec, fields, pool, rng), kind))
    rng.shuffle(planted)
    exact = [entry for entry in planted if entry[2] == "exact"]
    for fields, expected, _ in rng.sample(exact, counts.get("duplicate", 0)):
        planted.append(({**fields, "middle_name": ""}, expected, "duplicate"))
    return [
        (IncomingStudent(sender_sis_id=f"T{number:07d}", **fields), expected, kind)  # type: ignore[arg-type]
        for number, (fields, expected, kind) in enumerate(planted)
    ]
