"""The tasks hai-tiny learns: generated ChatML conversations with varied phrasings, a seeded
random stream for training, and a fixed held-out split for evaluation.

Held out (never in training):
  - arithmetic: whole operand pairs (every phrasing of them), so the model must add and
    subtract pairs it has not seen;
  - dates: whole (month, day, offset) questions;
  - the table-like tasks (capitals, word lengths, unit conversions, weekdays, times tables,
    greetings): whole (fact, phrasing) combinations - the fact itself is seen in training
    under other phrasings, as a lookup table is learned from any wording of it.
"""
import hashlib

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [("January", 31), ("February", 28), ("March", 31), ("April", 30), ("May", 31), ("June", 30),
          ("July", 31), ("August", 31), ("September", 30), ("October", 31), ("November", 30), ("December", 31)]
CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"),
    ("Brazil", "Brasilia"), ("Argentina", "Buenos Aires"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
    ("Nigeria", "Abuja"), ("Russia", "Moscow"), ("Poland", "Warsaw"), ("Sweden", "Stockholm"), ("Norway", "Oslo"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Greece", "Athens"), ("Turkey", "Ankara"),
    ("Australia", "Canberra"), ("Austria", "Vienna"), ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"),
    ("Ireland", "Dublin"), ("Switzerland", "Bern"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Colombia", "Bogota"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("South Korea", "Seoul"), ("Indonesia", "Jakarta"),
    ("Iran", "Tehran"), ("Morocco", "Rabat"), ("Ghana", "Accra"), ("Cuba", "Havana"),
]
WORDS = """apple banana cherry garden window river mountain pencil yellow orange purple silver
kitchen doctor teacher planet rocket ocean forest candle mirror bottle guitar piano violin
tiger rabbit monkey turtle dolphin eagle spider castle bridge island valley desert winter
summer spring autumn morning evening button pocket ticket basket jacket blanket pillow
hammer ladder wallet camera laptop phone cable engine wheel train plane boat truck bicycle
cookie butter cheese bread honey sugar coffee water juice lemon melon grape peach plum
dragon wizard knight queen king prince castle tower shadow thunder rain cloud storm snow
happy quick brave calm gentle strong simple bright quiet lucky
cat dog sun sky sea box cup hat pen key map egg ant bee owl fox cow pig hen
elephant butterfly computer chocolate adventure telephone umbrella crocodile strawberry
newspaper""".split()
WORDS = sorted(set(WORDS))
UNITS = [  # (from, to, factor)
    ("meters", "centimeters", 100), ("kilometers", "meters", 1000), ("kilograms", "grams", 1000),
    ("hours", "minutes", 60), ("minutes", "seconds", 60), ("feet", "inches", 12), ("days", "hours", 24),
    ("weeks", "days", 7), ("liters", "milliliters", 1000), ("dozens", "items", 12),
]
GREETINGS = [
    (["Hello", "Hello!", "Hi", "Hi!", "Hi there", "Hey", "Hey there!", "Good morning", "Good afternoon", "Good evening"],
     "Hello! How can I help you today?"),
    (["Thanks!", "Thank you", "Thank you!", "Thanks a lot", "Many thanks"], "You're welcome!"),
    (["Goodbye", "Bye", "Bye!", "See you later", "Good night"], "Goodbye! Have a nice day."),
    (["Who are you?", "What is your name?", "What are you?", "Tell me about yourself."],
     "I am hai-tiny, a small model that runs on your device. I can do simple arithmetic, unit conversions, "
     "count letters, work out weekdays and dates, and name capitals."),
    (["How are you?", "How are you doing?", "How is it going?"], "I am doing well, thank you! How can I help?"),
]


def _held(*key):
    """A fixed tenth of all keys, the same on every machine."""
    h = hashlib.sha256(repr(key).encode()).digest()
    return h[0] % 10 == 0


# ---- each task: (phrasings, a sampler of facts, the answer) ------------------------------------

ADD_P = ["What is {a} + {b}?", "What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}.",
         "How much is {a} + {b}?", "{a} + {b} = ?", "What do you get if you add {a} and {b}?", "Calculate {a}+{b}."]
SUB_P = ["What is {a} - {b}?", "What is {a} minus {b}?", "Subtract {b} from {a}.", "Compute {a} - {b}.",
         "How much is {a} - {b}?", "{a} - {b} = ?", "What do you get if you take {b} away from {a}?"]
MUL_P = ["What is {a} times {b}?", "What is {a} x {b}?", "Multiply {a} by {b}.", "Compute {a} * {b}.",
         "How much is {a} times {b}?", "What is the product of {a} and {b}?"]
UNIT_P = ["How many {to} are in {n} {fr}?", "Convert {n} {fr} to {to}.", "What is {n} {fr} in {to}?",
          "{n} {fr} is how many {to}?", "How many {to} is {n} {fr}?"]
LEN_P = ["How many letters are in the word '{w}'?", "Count the letters in '{w}'.", "How long is the word '{w}'?",
         "How many letters does '{w}' have?", "What is the length of the word '{w}'?"]
# weekday arithmetic a model this size learns: a day or two forward or back (runs with offsets
# up to 14 and up to 6 learned nothing at all - not even the training questions - in 2200 steps)
DAY_P = {  # (offset, forward?) -> phrasings
    (1, True): ["If today is {d}, what day is tomorrow?", "What day comes after {d}?", "What day is 1 day after {d}?",
                "Today is {d}. What day is it tomorrow?", "Which day follows {d}?"],
    (2, True): ["If today is {d}, what day is the day after tomorrow?", "What day is 2 days after {d}?",
                "Today is {d}. What day is it in 2 days?", "Which day comes two days after {d}?"],
    (1, False): ["If today is {d}, what day was yesterday?", "What day comes before {d}?", "What day is 1 day before {d}?",
                 "Today is {d}. What day was it yesterday?", "Which day precedes {d}?"],
    (2, False): ["If today is {d}, what day was the day before yesterday?", "What day is 2 days before {d}?",
                 "Today is {d}. What day was it 2 days ago?", "Which day comes two days before {d}?"],
}
DATE_P = ["What is the date {k} days after {m} {d}?", "What date comes {k} days after {m} {d}?",
          "If today is {m} {d}, what is the date in {k} days?"]
CAP_P = ["What is the capital of {c}?", "Which city is the capital of {c}?", "Name the capital of {c}.",
         "What city is {c}'s capital?", "Tell me the capital city of {c}.", "Capital of {c}?"]


def _unit_singular(word, n):
    if n != 1:
        return word
    return {"centimeters": "centimeter", "meters": "meter", "kilometers": "kilometer", "grams": "gram",
            "kilograms": "kilogram", "minutes": "minute", "hours": "hour", "seconds": "second",
            "feet": "foot", "inches": "inch", "days": "day", "weeks": "week", "liters": "liter",
            "milliliters": "milliliter", "dozens": "dozen", "items": "item"}.get(word, word)


def add_item(r):
    a, b, p = r.randint(0, 50), r.randint(0, 50), r.randrange(len(ADD_P))
    return ("add", (a, b), p, ADD_P[p].format(a=a, b=b), f"{a} + {b} = {a + b}.")


def sub_item(r):
    a = r.randint(0, 50)
    b, p = r.randint(0, a), r.randrange(len(SUB_P))
    return ("sub", (a, b), p, SUB_P[p].format(a=a, b=b), f"{a} - {b} = {a - b}.")


def mul_item(r):
    a, b, p = r.randint(1, 10), r.randint(1, 10), r.randrange(len(MUL_P))
    return ("mul", (a, b, p), p, MUL_P[p].format(a=a, b=b), f"{a} x {b} = {a * b}.")


def unit_item(r):
    fr, to, f = r.choice(UNITS)
    n, p = r.randint(1, 20), r.randrange(len(UNIT_P))
    q = UNIT_P[p].format(n=n, fr=_unit_singular(fr, n), to=to)
    return ("units", (fr, n, p), p, q, f"{n} {_unit_singular(fr, n)} is {n * f} {_unit_singular(to, n * f)}.")


def len_item(r):
    w, p = r.choice(WORDS), r.randrange(len(LEN_P))
    return ("letters", (w, p), p, LEN_P[p].format(w=w), f"The word '{w}' has {len(w)} letters.")


def day_item(r):
    d, k, fwd = r.randrange(7), r.randint(1, 2), r.random() < 0.5
    phr = DAY_P[(k, fwd)]
    p = r.randrange(len(phr))
    q = phr[p].format(d=DAYS[d])
    a = f"It will be {DAYS[(d + k) % 7]}." if fwd else f"It was {DAYS[(d - k) % 7]}."
    return ("weekday", (d, k, fwd, p), p, q, a)


def date_item(r):
    mi = r.randrange(12)
    m, days = MONTHS[mi]
    d, k, p = r.randint(1, days), r.randint(1, 10), r.randrange(len(DATE_P))
    nd, nm = d + k, mi
    if nd > days:
        nd, nm = nd - days, (mi + 1) % 12
    return ("date", (mi, d, k), p, DATE_P[p].format(m=m, d=d, k=k), f"It is {MONTHS[nm][0]} {nd}.")


def cap_item(r):
    c, cap = r.choice(CAPITALS)
    p = r.randrange(len(CAP_P))
    return ("capital", (c, p), p, CAP_P[p].format(c=c), f"The capital of {c} is {cap}.")


def greet_item(r):
    gi = r.randrange(len(GREETINGS))
    qs, ans = GREETINGS[gi]
    qi = r.randrange(len(qs))
    return ("greeting", (gi, qi), qi, qs[qi], ans)


# the mixture: arithmetic and dates get more weight (they must be computed, not looked up)
TASKS = [(add_item, 4), (sub_item, 3), (mul_item, 2), (unit_item, 2), (len_item, 2), (day_item, 2),
         (date_item, 3), (cap_item, 2), (greet_item, 2)]
TASK_NAMES = ["add", "sub", "mul", "units", "letters", "weekday", "date", "capital", "greeting"]


def is_held(item):
    task, key = item[0], item[1]
    return _held(task, key)


def sample(r, held_out):
    """One (task, question, answer) from the training stream (held_out=False) or the held-out set."""
    total = sum(w for _, w in TASKS)
    while True:
        x = r.random() * total
        for fn, w in TASKS:
            if x < w:
                break
            x -= w
        item = fn(r)
        if is_held(item) == held_out:
            return item[0], item[3], item[4]


# ---- outlier exposure: prompts that are none of the tasks ------------------------------------------
# The model is trained to be unsure (a uniform next-token distribution) when asked something else,
# so that its answer entropy tells the router what to escalate. These prompts come from general
# English text (Debian's license texts) cut, shuffled and rephrased - never from the evaluation's
# out-of-domain prompts (ood_prompts.txt), which stay unseen.
OOD_FORMS = ["{s}", "{s}?", "What about this: {s}", "Tell me: {s}", "{s} Why?", "Please explain: {s}", "{w}", "{w}?"]


def ood_item(r, sentences, words):
    s = r.choice(sentences)
    ws = s.split()
    if len(ws) > 14:
        start = r.randrange(len(ws) - 12)
        s = " ".join(ws[start:start + r.randint(4, 12)])
    w = " ".join(r.choice(words) for _ in range(r.randint(2, 9)))
    return r.choice(OOD_FORMS).format(s=s, w=w)
