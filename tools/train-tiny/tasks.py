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
import json

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
    (["Hello", "Hello!", "Hi", "Hi!", "Hi there", "Hey", "Hey there!", "Good morning", "Good afternoon", "Good evening",
      "Hello there", "Greetings!", "Hiya", "Yo", "Morning!", "Hello, anyone there?"],
     "Hello! How can I help you today?"),
    (["Thanks!", "Thank you", "Thank you!", "Thanks a lot", "Many thanks", "Thanks so much", "Cheers", "Thank you very much"],
     "You're welcome!"),
    (["Goodbye", "Bye", "Bye!", "See you later", "Good night", "See you", "Bye for now", "Talk to you later"],
     "Goodbye! Have a nice day."),
    (["Who are you?", "What is your name?", "What are you?", "Tell me about yourself.", "Hello, who are you?",
      "Hi! What's your name?", "What should I call you?", "Introduce yourself.", "What can you do?", "Are you a robot?",
      "Who am I talking to?", "Hey, what are you?"],
     "I am hai-tiny, a small model that runs on your device. I can do simple arithmetic, unit conversions, "
     "count letters, work out weekdays and dates, and name capitals."),
    (["How are you?", "How are you doing?", "How is it going?", "How's it going?", "Hi, how are you?",
      "How are things?", "Are you doing well?"], "I am doing well, thank you! How can I help?"),
]


def _held(*key):
    """A fixed tenth of all keys, the same on every machine."""
    h = hashlib.sha256(repr(key).encode()).digest()
    return h[0] % 10 == 0


# ---- each task: (phrasings, a sampler of facts, the answer) ------------------------------------

ADD_P = ["What is {a} + {b}?", "What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}.",
         "How much is {a} + {b}?", "{a} + {b} = ?", "What do you get if you add {a} and {b}?", "Calculate {a}+{b}.",
         "{a} plus {b}?", "What's {a} + {b}?", "Sum of {a} and {b}?", "Can you add {a} and {b}?", "{a}+{b}",
         "Work out {a} + {b}.", "What is the sum of {a} and {b}?"]
SUB_P = ["What is {a} - {b}?", "What is {a} minus {b}?", "Subtract {b} from {a}.", "Compute {a} - {b}.",
         "How much is {a} - {b}?", "{a} - {b} = ?", "What do you get if you take {b} away from {a}?",
         "{a} minus {b}?", "What's {a} - {b}?", "{a}-{b}", "Take {b} from {a}.", "What is the difference of {a} and {b}?",
         "Work out {a} - {b}."]
MUL_P = ["What is {a} times {b}?", "What is {a} x {b}?", "Multiply {a} by {b}.", "Compute {a} * {b}.",
         "How much is {a} times {b}?", "What is the product of {a} and {b}?", "{a} times {b}?", "What's {a} * {b}?",
         "{a}x{b}", "{a} multiplied by {b}?"]
UNIT_P = ["How many {to} are in {n} {fr}?", "Convert {n} {fr} to {to}.", "What is {n} {fr} in {to}?",
          "{n} {fr} is how many {to}?", "How many {to} is {n} {fr}?", "{n} {fr} to {to}?", "Convert {n} {fr} into {to}.",
          "What's {n} {fr} in {to}?", "How many {to} make {n} {fr}?", "Change {n} {fr} to {to}."]
LEN_P = ["How many letters are in the word '{w}'?", "Count the letters in '{w}'.", "How long is the word '{w}'?",
         "How many letters does '{w}' have?", "What is the length of the word '{w}'?",
         "How many letters does the word {w} have?", "How many letters in {w}?", "Count the letters of the word {w}.",
         "How many characters are in '{w}'?", "Number of letters in '{w}'?", "How long is {w}?"]
# weekday arithmetic a model this size learns: a day or two forward or back (runs with offsets
# up to 14 and up to 6 learned nothing at all - not even the training questions - in 2200 steps)
DAY_P = {  # (offset, forward?) -> phrasings
    (1, True): ["If today is {d}, what day is tomorrow?", "What day comes after {d}?", "What day is 1 day after {d}?",
                "Today is {d}. What day is it tomorrow?", "Which day follows {d}?",
                "Day after {d}?", "It's {d} today, what's tomorrow?"],
    (2, True): ["If today is {d}, what day is the day after tomorrow?", "What day is 2 days after {d}?",
                "Today is {d}. What day is it in 2 days?", "Which day comes two days after {d}?",
                "{d} plus two days?", "It's {d} today, what day is it in two days?"],
    (1, False): ["If today is {d}, what day was yesterday?", "What day comes before {d}?", "What day is 1 day before {d}?",
                 "Today is {d}. What day was it yesterday?", "Which day precedes {d}?",
                 "Day before {d}?", "It's {d} today, what was yesterday?"],
    (2, False): ["If today is {d}, what day was the day before yesterday?", "What day is 2 days before {d}?",
                 "Today is {d}. What day was it 2 days ago?", "Which day comes two days before {d}?",
                 "{d} minus two days?", "It's {d} today, what day was it two days ago?"],
}
DATE_P = ["What is the date {k} days after {m} {d}?", "What date comes {k} days after {m} {d}?",
          "If today is {m} {d}, what is the date in {k} days?", "{k} days after {m} {d}?", "Add {k} days to {m} {d}.",
          "What's the date {k} days from {m} {d}?"]
CAP_P = ["What is the capital of {c}?", "Which city is the capital of {c}?", "Name the capital of {c}.",
         "What city is {c}'s capital?", "Tell me the capital city of {c}.", "Capital of {c}?",
         "capital city of {c}?", "What's the capital of {c}?", "Where is the capital of {c}?",
         "Which city is {c}'s capital city?", "{c} capital?", "Do you know the capital of {c}?"]


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


# ---- device tools: with the tools shown, requests become calls --------------------------------------
# The template shows tools as one system line, "Tools: set_timer, order_coffee" (names only: the
# model knows its tools' arguments; rows are 128 tokens). A request for a tool that is shown gets
# the call in the Hermes syntax hai parses; a request for a tool that is not shown, or for a
# tool the model does not know (the weather, e-mail, ...), is out of its depth: learned as unsure,
# so the router sends it to the cloud. With tools shown, the other tasks are answered as before.
DEVICE_TOOLS = ["set_timer", "convert_units", "order_coffee"]
OTHER_TOOLS = ["get_weather", "send_email", "book_train", "play_music", "call_contact", "create_event",
               "translate_text", "search_web", "set_alarm", "send_message", "order_food", "set_reminder"]


def tool_call(name, args):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


TIMER_LABELS = ["pasta", "eggs", "tea", "laundry", "oven", "bread", "rice", "pizza", "cake", "workout", "nap", "meeting",
                "parking", "potatoes", "soup"]
# Tool requests are composed from parts (a lead-in, the request's core, the arguments in several
# forms, a tail), so that the model learns the arguments from any wording around them rather than
# a list of sentences. The held-out split keys on the core, so held-out requests are worded in
# cores never trained with those arguments.
# No greeting's or thanks' words here ("hey, ", "ok, ", " thanks"): in run 6 they taught the
# model that such words start a call, and greetings fell from 80% to 56% right.
LEADS = ["", "", "", "please ", "can you ", "could you ", "would you ", "will you ", "go ahead and ", "I want you to ",
         "just ", "quickly "]
TAILS = ["", "", "", ".", ".", "?", " please", ", please.", " now", " for me", " right away", " if you can", "!"]


def compose(r, lead_ok, core):
    """A lead-in (when the core is an imperative), the core, a tail; the first letter capitalised
    most of the time, as people type."""
    q = (r.choice(LEADS) if lead_ok else "") + core + r.choice(TAILS)
    q = q.strip()
    if r.random() < 0.8:
        q = q[0].upper() + q[1:]
    return q


TIMER_LABELS = ["pasta", "eggs", "tea", "laundry", "oven", "bread", "rice", "pizza", "cake", "workout", "nap", "meeting",
                "parking", "potatoes", "soup", "cookies", "roast", "yoga", "homework", "steak", "beans", "plants"]
# (core, an imperative a lead-in may precede); {t}: "25 minutes", {a}: "25-minute"
TIMER_CORES = [("set a timer for {t}", True), ("start a timer for {t}", True), ("set the timer to {t}", True),
               ("set a countdown for {t}", True), ("start a countdown of {t}", True), ("count down {t}", True),
               ("time {t}", True), ("remind me in {t}", True), ("tell me when {t} are up", True),
               ("alert me in {t}", True), ("ping me in {t}", True), ("notify me in {t}", True), ("buzz me in {t}", True),
               ("wake me in {t}", True), ("timer for {t}", False), ("timer of {t}", False), ("{t} timer", False),
               ("countdown: {t}", False), ("I need a timer for {t}", False), ("a timer, {t}", False),
               ("set a {a} timer", True), ("start a {a} timer", True), ("put on a {a} timer", True),
               ("give me a {a} timer", True), ("I need a {a} timer", False), ("run a {a} countdown", True),
               ("a {a} timer", False), ("{a} timer", False), ("I'd like a {a} timer", False)]
# label forms: the request names what the timer is for ({c}: the core without its label)
TIMER_LABEL_FORMS = ["{c} for the {l}", "{c} for my {l}", "{c} for {l}", "{l}: {c}", "{l} - {c}",
                     "{c}, it's for the {l}", "the {l} needs {t}, {c}", "{c} to check the {l}"]
TIMER_LABEL_SHARE = 0.3  # a label only when the request names one (the model must not invent one)
TIMER_WORDS = [("half an hour", "half-hour", 30), ("an hour", "one-hour", 60), ("one hour", "one-hour", 60),
               ("a quarter of an hour", "quarter-hour", 15), ("one minute", "one-minute", 1), ("a minute", "one-minute", 1),
               ("two minutes", "two-minute", 2), ("three minutes", "three-minute", 3), ("five minutes", "five-minute", 5),
               ("ten minutes", "ten-minute", 10), ("fifteen minutes", "fifteen-minute", 15),
               ("twenty minutes", "twenty-minute", 20), ("thirty minutes", "thirty-minute", 30),
               ("two hours", "two-hour", 120), ("an hour and a half", "90-minute", 90), ("1 hour", "1-hour", 60),
               ("2 hours", "2-hour", 120)]


def timer_item(r):
    labelled = r.random() < TIMER_LABEL_SHARE
    p = r.randrange(len(TIMER_CORES))
    core, lead_ok = TIMER_CORES[p]
    if r.random() < 0.25:
        t, adj, n = r.choice(TIMER_WORDS)
    else:
        n = r.choice([r.randint(1, 60), r.randint(1, 120), r.choice([5, 10, 15, 20, 25, 30, 45, 90])])
        t = "1 minute" if n == 1 else f"{n} {r.choice(['minutes', 'minutes', 'minutes', 'min', 'mins'])}"
        adj = f"{n}{r.choice(['-minute', ' minute', ' min', '-min'])}"
    c = core.format(t=t, a=adj)
    lab = r.choice(TIMER_LABELS) if labelled else None
    if lab is not None:
        form = r.choice(TIMER_LABEL_FORMS)
        c = form.format(c=c, l=lab, t=t)
        lead_ok = lead_ok and form.startswith("{c}")
    args = {"minutes": n} if lab is None else {"minutes": n, "label": lab}
    return ("timer", (n, lab, labelled, p), p, compose(r, lead_ok, c), tool_call("set_timer", args), "set_timer")


DRINKS = ["espresso", "latte", "cappuccino", "americano", "flat white", "mocha", "macchiato", "cortado"]
SIZES = ["small", "medium", "large"]
MILKS = ["whole", "skim", "oat", "soy", "almond"]
SUGARS = [["no sugar", "without sugar", "zero sugar"], ["one sugar", "1 sugar", "a sugar"],
          ["two sugars", "2 sugars"], ["three sugars", "3 sugars"]]
SHOTS = ["an extra shot", "extra shot", "one extra shot", "an extra espresso shot"]
# (ask, an imperative a lead-in may precede); {o}: the order ("a large oat latte with one sugar")
COFFEE_ASK = [("order {o}", True), ("order me {o}", True), ("get me {o}", True), ("buy me {o}", True),
              ("grab me {o}", True), ("bring me {o}", True), ("send me {o}", True), ("please order {o}", False),
              ("I'd like {o}", False), ("I would like {o}", False), ("I'll have {o}", False), ("I'll take {o}", False),
              ("can I get {o}", False), ("can I have {o}", False), ("could I get {o}", False), ("I want {o}", False),
              ("let me get {o}", False), ("{o}, please", False), ("{o} please", False), ("{o}", False),
              ("coffee order: {o}", False), ("my order: {o}", False), ("make it {o}", False),
              ("I could use {o}", False), ("put in an order for {o}", True), ("order {o} from the cafe", True)]


def coffee_item(r):
    p = r.randrange(len(COFFEE_ASK))
    drink, size = r.choice(DRINKS), r.choice(SIZES)
    milk = r.choice(MILKS) if drink not in ("espresso", "americano") and r.random() < 0.6 else None
    sugar = r.randrange(4) if r.random() < 0.35 else None
    shot = r.random() < 0.25
    opts = []
    milk_form = r.randrange(3) if milk is not None else None  # before the drink, "with .. milk", "made with .. milk"
    if milk_form == 1:
        opts.append(f"{milk} milk" if r.random() < 0.8 else milk)
    elif milk_form == 2:
        opts.append(f"made with {milk} milk")
    if sugar is not None:
        opts.append(r.choice(SUGARS[sugar]))
    if shot:
        opts.append(r.choice(SHOTS))
    r.shuffle(opts)
    head = r.choice(["a ", "a ", "a ", "one ", ""])
    o = f"{head}{size} {milk + ' ' + r.choice(['milk ', '']) if milk_form == 0 else ''}{drink}"
    for k, opt in enumerate(opts):
        if opt.startswith("made with") or (opt.startswith("without") and k == 0):
            o += r.choice([" ", ", "]) + opt
        elif k == 0:
            o += r.choice([" with ", " with ", ", "])
            o += opt
        else:
            o += r.choice([" and ", ", ", " and "]) + opt
    args = {"drink": drink, "size": size}
    if milk is not None:
        args["milk"] = milk
    if sugar is not None:
        args["sugar"] = sugar
    if shot:
        args["extra_shot"] = True
    ask, lead_ok = COFFEE_ASK[p]
    q = compose(r, lead_ok, ask.format(o=o))
    q = q.replace("a espresso", "an espresso").replace("a americano", "an americano")
    return ("coffee", (drink, size, milk, sugar, shot, p), p, q, tool_call("order_coffee", args), "order_coffee")


TEXT_UNITS = {(a, b) for a, b, _ in UNITS}
TOOL_UNITS = sorted(TEXT_UNITS) + [
    ("miles", "kilometers"), ("kilometers", "miles"), ("pounds", "kilograms"), ("kilograms", "pounds"),
    ("inches", "centimeters"), ("celsius", "fahrenheit"), ("fahrenheit", "celsius"), ("ounces", "grams"),
    ("gallons", "liters"), ("yards", "meters"), ("cups", "milliliters"), ("feet", "meters")]
CONVERT_P = UNIT_P + ["Convert {n} {fr} to {to}, please.", "{n} {fr} in {to}", "What are {n} {fr} in {to}?",
                      "How much is {n} {fr} in {to}?", "Give me {n} {fr} in {to}.", "What's {n} {fr} converted to {to}?",
                      "In {to}, how much is {n} {fr}?", "How many {to} are there in {n} {fr}?", "I have {n} {fr}; how many {to} is that?",
                      "Could you convert {n} {fr} to {to}?", "{n} {fr} into {to}, please.", "Tell me {n} {fr} in {to}.",
                      "{n} {fr} equals how many {to}?", "What does {n} {fr} make in {to}?", "Switch {n} {fr} to {to}.",
                      "Please convert {n} {fr} into {to}.", "Can you tell me how many {to} {n} {fr} is?",
                      "{n} {fr} = how many {to}?", "Convert from {fr} to {to}: {n}", "What is {n} {fr} when converted to {to}?",
                      "Do the conversion: {n} {fr} to {to}.", "How many {to} would {n} {fr} be?", "{n} {fr} to {to} please",
                      "Go from {n} {fr} to {to}.", "What's the {to} value of {n} {fr}?"]


def convert_item(r):
    fr, to = r.choice(TOOL_UNITS)
    v = r.randint(1, 200) if r.random() < 0.75 else r.randint(1, 99) + 0.5
    p = r.randrange(len(CONVERT_P))
    q = CONVERT_P[p].format(n=v, fr=_unit_singular(fr, v), to=to)
    return ("convert", (fr, to, v, p), p, q, tool_call("convert_units", {"value": v, "from": fr, "to": to}),
            "convert_units")


# requests for tools the model does not have: learned as unsure (the router escalates them)
CITIES = [c for _, c in CAPITALS] + ["London", "New York", "Sydney", "Toronto", "Munich", "Osaka"]
PEOPLE = ["Anna", "Tom", "my boss", "Maria", "the team", "Ali", "Sophie", "my mother", "David", "Lena"]
OTHER_ASK = [
    ("get_weather", ["What's the weather in {c}?", "Will it rain in {c} tomorrow?", "How warm is it in {c}?",
                     "Weather forecast for {c}."]),
    ("send_email", ["Email {n} that I'm running late.", "Send an email to {n} about the meeting.",
                    "Write to {n} and say thanks."]),
    ("book_train", ["Book a train to {c} for tomorrow.", "Get me a train ticket to {c}.", "Book two seats to {c}."]),
    ("play_music", ["Play some jazz.", "Play my workout playlist.", "Put on some relaxing music."]),
    ("call_contact", ["Call {n}.", "Phone {n} now.", "Ring {n} on speaker."]),
    ("create_event", ["Add lunch with {n} on Friday to my calendar.", "Schedule a meeting with {n} at 3 pm."]),
    ("translate_text", ["Translate 'good morning' into Spanish.", "How do you say thank you in Japanese?"]),
    ("search_web", ["Search the web for cheap flights to {c}.", "Look up reviews of the new phone."]),
    ("set_alarm", ["Wake me up at 7 am.", "Set an alarm for 6:30.", "Alarm at 5:45, please.", "Get me up at 8 tomorrow."]),
    ("send_message", ["Text {n} that I'm on my way.", "Send {n} a message: see you soon.",
                      "Tell {n} I'll be 10 minutes late.", "Message {n}: meeting in 20 minutes."]),
    # asks that look like the device tools' but are not theirs: a call would be a wrong action
    ("order_food", ["Order a pizza for dinner.", "Get me a burger with fries.", "Order sushi for two.",
                    "I'd like a large pepperoni pizza."]),
    ("set_reminder", ["Remind me to call {n} tomorrow.", "Remind me about the dentist on Monday."]),
]


def other_tool_request(r):
    name, forms = r.choice(OTHER_ASK)
    return name, r.choice(forms).format(c=r.choice(CITIES), n=r.choice(PEOPLE))


# the mixture: arithmetic and dates get more weight (they must be computed, not looked up)
TASKS = [(add_item, 4), (sub_item, 3), (mul_item, 2), (unit_item, 2), (len_item, 2), (day_item, 2),
         (date_item, 3), (cap_item, 2), (greet_item, 3.5), (timer_item, 2.5), (coffee_item, 3.5), (convert_item, 2.5)]
TASK_NAMES = ["add", "sub", "mul", "units", "letters", "weekday", "date", "capital", "greeting", "timer", "coffee",
              "convert"]
TOOLS_WITH_TASK = 0.4  # text tasks asked with some tools shown (a greeting is not a coffee order)
TOOL_MISSING = 0.12  # device-tool requests asked without their tool: unsure


def is_held(item):
    task, key = item[0], item[1]
    return _held(task, key)


def tool_list(r, must=None, without=None):
    """The tools an app shows: some device tools and some others, in any order."""
    names = [t for t in DEVICE_TOOLS if t != without and (t == must or r.random() < 0.5)]
    names += r.sample(OTHER_TOOLS, r.choice([0, 0, 1, 1, 2, 3]))
    if not names:
        names = [r.choice(OTHER_TOOLS)]
    r.shuffle(names)
    return names


STYLE_PREFIX = ["Hey, ", "Hi, ", "Quick question: ", "Hello! ", "OK, ", "So, ", "Please, ", "Um, ", "Question: ",
                "I want to know: ", "Help me out: ", "Right, ", "One more: ", "Excuse me, "]
STYLE_SUFFIX = [" Thanks!", " Thank you.", " please", " Cheers.", " Ta.", " if you can"]


def style(r, q):
    """Surface variety real users add: a lead-in, lower case, no final punctuation."""
    if r.random() < 0.15:
        q = r.choice(STYLE_PREFIX) + q[0].lower() + q[1:]
    if r.random() < 0.15:
        q = q.lower()
    if r.random() < 0.15 and q[-1] in ".?!":
        q = q[:-1]
    if r.random() < 0.1:
        q = q + r.choice(STYLE_SUFFIX)
    return q


def sample(r, held_out):
    """One exchange from the training stream (held_out=False) or the held-out set: a dict with
    task, prompt, answer, tools (the names shown, or None) and unsure (learned as uniform)."""
    total = sum(w for _, w in TASKS)
    while True:
        x = r.random() * total
        for fn, w in TASKS:
            if x < w:
                break
            x -= w
        item = fn(r)
        if is_held(item) != held_out:
            continue
        ex = {"task": item[0], "prompt": style(r, item[3]), "answer": item[4], "tools": None, "unsure": False}
        if len(item) > 5:  # a device tool's request
            if r.random() < TOOL_MISSING:
                if held_out or (item[0] == "convert" and item[1][:2] in TEXT_UNITS):
                    continue  # the held-out set measures calls; conversions it knows are answered in text
                ex["tools"] = tool_list(r, without=item[5]) if r.random() < 0.6 else None
                ex["unsure"] = True
            else:
                ex["tools"] = tool_list(r, must=item[5])
        elif r.random() < TOOLS_WITH_TASK:
            # a conversion asked with convert_units shown is a call (the convert task), not text
            ex["tools"] = tool_list(r, without="convert_units" if item[0] == "units" else None)
        return ex


def other_tool_item(r):
    """A request for a tool hai-tiny does not have, with or without that tool shown: unsure."""
    name, q = other_tool_request(r)
    tools = tool_list(r) if r.random() < 0.7 else None
    if tools is not None and name not in tools and r.random() < 0.6:
        tools[r.randrange(len(tools))] = name
    return {"task": "other_tool", "prompt": style(r, q), "answer": None, "tools": tools, "unsure": True}


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
