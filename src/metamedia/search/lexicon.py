"""Word tables for the query parser: regex fragments (matched case-insensitively, whole words) -> meaning.

Every key is a regular-expression fragment without capturing groups. Where two entries can match at
the same place, the parser keeps the longest match ("action-packed" beats "action"), so the tables
need no ordering. Genre values are canonical names from `metamedia.vocab.GENRES`, moods from `MOODS`.
"""

from __future__ import annotations

# Decisions the tables encode (also in the parser's module docstring):
# - "funny"/"hilarious" are Comedy (a genre, not a mood: MOODS has no "funny").
# - "war" is a genre word only in the singular: "Star Wars" and "Clone Wars" stay in the text.
# - "zombies", "superhero"... are not genre words: they stay in the text. "space", "aliens", "robots",
#   "time travel"... stay in the text and also ask for Science Fiction.

GENRE_WORDS: dict[str, tuple[str, ...]] = {
    r"action": ("Action",),
    r"adventures?|adventurous": ("Adventure",),
    r"animated|animations?|cartoons?|animes?": ("Animation",),
    r"comed(?:y|ies)|comedic|funny|funnier|funniest|hilarious|humou?rous": ("Comedy",),
    r"crimes?|heists?|gangsters?|mafia|mobsters?|criminals?|organi[sz]ed\s+crime": ("Crime",),
    r"true[\s-]+crime": ("Crime", "Documentary"),
    r"documentar(?:y|ies)|docudramas?|docs?|docus?|non[\s-]?fiction": ("Documentary",),
    r"dramas?|dramatic": ("Drama",),
    r"family|families|(?:family|kids?|child)[\s-]+friendly|kids'?|children'?s?|childrens": ("Family",),
    r"for\s+(?:the\s+)?(?:whole\s+)?(?:little\s+)?(?:family|kids|children)": ("Family",),
    r"fantas(?:y|ies)|fantastical": ("Fantasy",),
    r"history|historical|historic|period(?:[\s-]+pieces?)?|biopics?|biographical": ("History",),
    r"horrors?|scary|scarier|scariest|slashers?|spooky|creepy": ("Horror",),
    r"music|musicals?": ("Music",),
    r"myster(?:y|ies)|whodunn?its?|detectives?": ("Mystery",),
    r"romances?|romantic|love[\s-]+stor(?:y|ies)": ("Romance",),
    r"rom[\s-]?coms?|romantic[\s-]+comed(?:y|ies)": ("Romance", "Comedy"),
    r"sci[\s-]?fi|science[\s-]+fiction|space[\s-]+operas?": ("Science Fiction",),
    r"thrillers?": ("Thriller",),
    r"war|wartime|war[\s-]+time": ("War",),
    r"westerns?|(?:wild|old)[\s-]+west|spaghetti[\s-]+westerns?|cowboys?": ("Western",),
    r"(?:made[\s-]+for[\s-]+)?(?:tv|television)[\s-]+(?:movies?|films?)": ("TV Movie",),
}

# Named wars set a genre but stay in the text: "world war ii" says more than "War" alone.
GENRE_WORDS_KEPT_IN_TEXT: dict[str, tuple[str, ...]] = {
    r"(?:first|second)\s+world\s+war|world\s+war\s+(?:i{1,2}|one|two|[12])|ww\s?(?:i{1,2}|[12])": ("War",),
    r"(?:cold|civil|vietnam|korean|gulf|iraq|trojan)\s+war": ("War",),
    # Science-fiction subjects: the word is what the user wants to see, the genre is what it implies
    # ("space adventure with aliens" is Adventure + Science Fiction, text "space with aliens").
    r"(?:outer\s+)?space|aliens?|extra[\s-]?terrestrials?|ufos?|spaceships?|starships?|spacecraft"
    r"|robots?|androids?|cyborgs?|time[\s-]+travel(?:l?(?:ing|ers?))?|dystopi(?:a|an)|galax(?:y|ies)"
    r"|interstellar|futuristic": ("Science Fiction",),
}

MOOD_WORDS: dict[str, str] = {
    r"exciting|thrilling|action[\s-]+packed|adrenaline(?:[\s-]+(?:pumping|fu?ell?ed|rush))?": "exciting",
    r"fast[\s-]+paced|high[\s-]+octane": "exciting",
    r"relaxing|relaxed|chill(?:ed)?|chill[\s-]?out|cozy|cosy|laid[\s-]?back|easy[\s-]?going|low[\s-]?key": "relaxing",
    r"happy|cheerful|uplifting|upbeat|joyful|light[\s-]?hearted": "happy",
    r"sad|sadder|saddest|tear[\s-]?jerkers?|melanchol(?:y|ic)|depressing|heart[\s-]?breaking": "sad",
    r"intense|gripping|hard[\s-]+hitting|harrowing": "intense",
    r"calm|calming|peaceful|quiet|serene|soothing": "calm",
    r"suspense(?:ful)?|tense|nail[\s-]?biting": "suspenseful",
    r"(?:on\s+the\s+)?edge[\s-]+of[\s-]+(?:my|your|our|the)[\s-]+seats?": "suspenseful",
    r"dark|darker|darkest|gritty|bleak|grim|noir|neo[\s-]?noir|film[\s-]+noir": "dark",
    r"feel[\s-]?good|heart[\s-]?warming|wholesome": "feel-good",
}

# Phrases that carry a mood and genres at once.
MOOD_GENRE_WORDS: dict[str, tuple[str, tuple[str, ...]]] = {
    r"black\s+comed(?:y|ies)": ("dark", ("Comedy",)),
}

# Media nouns: value = genres they also imply ("sitcom" is a TV comedy).
TV_WORDS: dict[str, tuple[str, ...]] = {
    r"(?:tv|television)(?:[\s-]+(?:shows?|series|programs?|programmes?))?": (),
    r"series|mini[\s-]?series|shows|(?:a|the)\s+show": (),
    r"sitcoms?": ("Comedy",),
    r"docu[\s-]?series": ("Documentary",),
}
MOVIE_WORDS: dict[str, tuple[str, ...]] = {
    r"movies?|films?|flicks?|motion\s+pictures?|feature\s+films?": (),
}

# Vague quality words: rating_min = ACCLAIMED_RATING unless the query also gives a number.
ACCLAIMED_RATING = 7.5
ACCLAIMED_WORDS: tuple[str, ...] = (
    r"(?:highly|high|top|best|well)[\s-]+(?:rated|reviewed)",
    r"(?:critically[\s-]+)?acclaimed",
    r"(?:award|oscar)[\s-]+winn(?:ing|ers?)",
    r"must[\s-]+sees?|masterpieces?|greatest",
    r"(?:of\s+)?all[\s-]+time",
    r"best|top\s+[0-9]{1,3}",
)

# Vague length words, overridden by any explicit duration.
SHORT_RUNTIME_MAX = 90
LONG_RUNTIME_MIN = 150
AROUND_RUNTIME_SLACK = 15  # "around 2 hours" = 105..135 minutes
SHORT_WORDS: tuple[str, ...] = (r"short(?:er)?", r"quick(?:\s+(?:watch|one))?", r"quickies?")
LONG_WORDS: tuple[str, ...] = (r"long(?:er)?", r"lengthy", r"epics?")

# Vague era words, overridden by any explicit year expression.
RECENT_YEARS = 3  # "recent"/"new"/"latest" = released in the last 3 years (year_min = today.year - 3)
MODERN_YEAR_MIN = 2000
CLASSIC_YEAR_MAX = 1979
RECENT_WORDS: tuple[str, ...] = (
    r"recent(?:ly(?:[\s-]+released)?)?",
    r"latest|newest|brand[\s-]+new|new\s+releases?",
    r"(?:in\s+)?recent\s+years",
)
MODERN_WORDS: tuple[str, ...] = (r"modern|contemporary", r"modern[\s-]+classics?")
CLASSIC_WORDS: tuple[str, ...] = (r"classics?|vintage|oldies",)
# "new" and "old" only count when they modify a media noun or a genre ("old westerns", "new movies")
# or end the query ("something old"); see the parser.
NEW_WORD = r"new(?:er)?"
OLD_WORD = r"old(?:er)?(?:[\s-]+school)?"

# Phrases kept verbatim in the text, never read as filters (they would otherwise trip a rule above).
PROTECTED_PHRASES: tuple[str, ...] = (
    r"new\s+(?:york|zealand|orleans|jersey|mexico|england|hampshire|delhi|year'?s?(?:\s+eve)?)",
    r"old\s+(?:man|men|woman|women|lady|ladies|people|folks|friends?|age|couple|timers?)",
    r"years?[\s-]+olds?",
    r"live[\s-]+action",
    r"good\s+(?:vs\.?|versus|v\.?|and)\s+evil",
    r"best\s+(?:friends?|man|men|woman)",
    r"long\s+(?:time|ago|lost|island|distance|term|way\s+home)",
    r"short\s+stor(?:y|ies)",
    r"war\s+of\s+the\s+worlds",
    r"doc\s+(?:brown|holliday|martin|savage|ock)",
)

# Request and politeness words removed wherever they appear.
FILLER_PHRASES: tuple[str, ...] = (
    r"i\s+(?:want|need|wanna)(?:\s+to\s+(?:watch|see))?",
    r"i(?:'d|\s+would)\s+(?:like|love)(?:\s+to\s+(?:watch|see))?",
    r"(?:i|we)(?:'m|\s+am|'re|\s+are)\s+(?:looking\s+for|in\s+the\s+mood\s+for)",
    r"looking\s+for|in\s+the\s+mood\s+for",
    r"(?:can|could|would)\s+you|do\s+you\s+have|got\s+any",
    r"(?:show|give|find|get|recommend|suggest)\s+(?:me|us)",
    r"recommend(?:ed|ations?)?|suggest(?:ions?)?",
    r"please|pls|plz|thanks|thank\s+you",
    r"(?:i|we)\s+(?:like|love|enjoy)",
    r"something|anything|stuff|ones?|some|any",
    r"good|great|nice|decent|awesome|cool|fun|solid|enjoyable",
    r"really|very|quite",
    r"kind\s+of|sort\s+of|type\s+of|kinda|sorta",
    r"(?:to\s+)?(?:watch|see|stream)(?:\s+(?:tonight|today|now))?|tonight|right\s+now",
    r"what\s+(?:are|is)|what's|is\s+there|are\s+there",
)

# Connectives trimmed only at the edges of the remaining text: "space with aliens" keeps its "with".
EDGE_WORDS: frozenset[str] = frozenset(
    "a an the with about for of and or in on at to by from that which where who whose like similar such as "
    "set but me my i we us our it its is are was be also just only either both too so then than "
    "featuring involving including".split()
)

NEGATORS = r"no|not|non|nothing|without|except|excluding|minus|anything\s+but|never"

NUMBER_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "few": 3,
    "couple": 2,
    "couple of": 2,
}

# Decade names -> first year. Two-digit decades: "20s".."90s" are the 1900s, "00s" and "10s" the 2000s.
DECADE_WORDS: dict[str, int] = {
    "twenties": 1920,
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
    "noughties": 2000,
    "aughts": 2000,
    "two thousands": 2000,
    "two-thousands": 2000,
}

# Where a film comes from: a word -> (original languages, ISO 639-1 as the catalog stores them;
# production countries, by name). A film matches when its language is one of the languages, or, for
# words that name no language ("british"), when a production country is one of the countries.
ORIGIN_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    r"french": (("fr",), ()),
    r"german": (("de",), ()),
    r"italian": (("it",), ()),
    r"japanese|anime": (("ja",), ()),
    r"spanish|spanish[\s-]language": (("es",), ()),
    r"mexican": (("es",), ("Mexico",)),
    r"chinese|mandarin": (("zh", "cn"), ()),
    r"cantonese|hong\s+kong": (("cn",), ("Hong Kong",)),
    r"korean|k[\s-]?drama": (("ko",), ()),
    r"russian|soviet": (("ru",), ()),
    r"swedish": (("sv",), ()),
    r"danish": (("da",), ()),
    r"norwegian": (("no",), ()),
    r"finnish": (("fi",), ()),
    r"dutch": (("nl",), ()),
    r"polish": (("pl",), ()),
    r"portuguese": (("pt",), ()),
    r"brazilian": (("pt",), ("Brazil",)),
    r"turkish": (("tr",), ()),
    r"thai": (("th",), ()),
    r"hindi|bollywood": (("hi",), ()),
    r"indian": (("hi", "ta", "te", "ml", "bn"), ("India",)),
    r"tamil": (("ta",), ()),
    r"persian|iranian": (("fa",), ()),
    r"greek": (("el",), ()),
    r"czech": (("cs",), ()),
    r"hungarian": (("hu",), ()),
    r"arabic": (("ar",), ()),
    r"hebrew|israeli": (("he",), ()),
    r"british|english[\s-]made|uk": ((), ("United Kingdom",)),
    r"american|hollywood": ((), ("United States of America",)),
    r"australian": ((), ("Australia",)),
    r"canadian": ((), ("Canada",)),
    r"irish": ((), ("Ireland",)),
    r"new\s+zealand": ((), ("New Zealand",)),
}
