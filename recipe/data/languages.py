"""Language names as the project writes them (XLM-R's list, see recipe/synth) and ISO 639-1 codes.

The Hub's card metadata wants codes; public datasets name their language configs by code.
"""

ISO = dict(
    Afrikaans="af", Amharic="am", Arabic="ar", Assamese="as", Azerbaijani="az", Belarusian="be",
    Bulgarian="bg", Bengali="bn", Breton="br", Bosnian="bs", Catalan="ca", Czech="cs", Welsh="cy",
    Danish="da", German="de", Greek="el", English="en", Esperanto="eo", Spanish="es", Estonian="et",
    Basque="eu", Persian="fa", Finnish="fi", French="fr", Irish="ga", Galician="gl", Gujarati="gu",
    Hausa="ha", Hebrew="he", Hindi="hi", Croatian="hr", Hungarian="hu", Armenian="hy", Indonesian="id",
    Icelandic="is", Italian="it", Japanese="ja", Javanese="jv", Georgian="ka", Kazakh="kk", Khmer="km",
    Kannada="kn", Korean="ko", Kurdish="ku", Kyrgyz="ky", Latin="la", Lao="lo", Lithuanian="lt",
    Latvian="lv", Malagasy="mg", Macedonian="mk", Malayalam="ml", Mongolian="mn", Marathi="mr",
    Malay="ms", Burmese="my", Nepali="ne", Dutch="nl", Norwegian="no", Oromo="om", Oriya="or",
    Punjabi="pa", Polish="pl", Pashto="ps", Portuguese="pt", Romanian="ro", Russian="ru",
    Sanskrit="sa", Sindhi="sd", Sinhala="si", Slovak="sk", Slovenian="sl", Somali="so",
    Albanian="sq", Serbian="sr", Sundanese="su", Swedish="sv", Swahili="sw", Tamil="ta", Telugu="te",
    Thai="th", Filipino="tl", Turkish="tr", Uyghur="ug", Ukrainian="uk", Urdu="ur", Uzbek="uz",
    Vietnamese="vi", Xhosa="xh", Yiddish="yi", Chinese="zh",
    **{"Western Frisian": "fy", "Scottish Gaelic": "gd"},
)
NAMES = {code: name for name, code in ISO.items()}


def name_of(code: str) -> str:
    return NAMES.get(code, code)
