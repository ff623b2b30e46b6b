"""Write synthetic_sample.jsonl: 204 hand-written records in the synthesis format (34 per task
group, several languages), small enough for the smoke recipe and the tests.

python data/samples/make_synthetic_sample.py
"""

import json
from pathlib import Path

# (topic, question, fact paragraph, near-miss paragraph, language)
TOPICS = [
    ("sourdough", "how long to proof sourdough overnight", "Sourdough dough usually proofs for 8 to 12 hours in the fridge; the cold slows the yeast and deepens the sour flavour.", "Sourdough starter is fed with equal weights of flour and water once a day when kept at room temperature.", "English"),
    ("bike chain", "why does my bike chain skip under load", "A chain that skips when you pedal hard is often worn: it has stretched past 0.75 percent and no longer sits in the cassette teeth.", "Bike chains come in widths for 8, 9, 10, 11 and 12 speed drivetrains and are joined with a quick link.", "English"),
    ("tomato blight", "yellow spots on tomato leaves what disease", "Early blight starts as yellow patches with brown rings on the lower tomato leaves and spreads upward in wet weather.", "Tomatoes need six to eight hours of direct sun and regular deep watering to set fruit.", "English"),
    ("heat pump", "does a heat pump work below freezing", "Modern air source heat pumps keep heating down to about minus 20 degrees Celsius, though their efficiency falls as it gets colder.", "A heat pump water heater moves heat from the surrounding air into a storage tank.", "English"),
    ("passport", "renew passport processing time", "Routine passport renewals take six to eight weeks by mail; expedited service shortens this to two or three weeks for an extra fee.", "A passport card is valid for land and sea travel to Canada and Mexico but not for flights.", "English"),
    ("python venv", "create python virtual environment windows", "On Windows run py -m venv .venv and then .venv\\Scripts\\activate to create and enter a virtual environment.", "Conda environments are listed with conda env list and removed with conda env remove.", "English"),
    ("espresso", "espresso tastes sour how to fix", "Sour espresso is under-extracted: grind finer, raise the dose slightly or pull a longer shot to extract more.", "A cappuccino is one shot of espresso topped with equal parts steamed milk and foam.", "English"),
    ("tax deadline", "deadline to file federal tax return", "Individual federal returns are due on April 15; an extension moves the filing deadline to October 15 but not the payment date.", "Quarterly estimated taxes are due in April, June, September and January.", "English"),
    ("migraine", "migraine with aura symptoms", "A migraine aura often brings flickering zigzag lines or blind spots for up to an hour before the headache begins.", "Tension headaches feel like a tight band around the head and rarely cause nausea.", "English"),
    ("git rebase", "undo a git rebase", "Find the commit before the rebase with git reflog and reset to it with git reset --hard HEAD@{n}.", "git cherry-pick applies the changes of one existing commit onto the current branch.", "English"),
    ("solar panels", "how much do solar panels degrade per year", "Crystalline silicon panels lose about 0.5 percent of their output a year, so most still deliver over 85 percent after 25 years.", "Solar inverters convert the panels' direct current into alternating current for the home.", "English"),
    ("cat food", "can cats eat dog food", "Dog food lacks enough taurine and arachidonic acid for cats, so a cat fed on it for long can develop heart and eye problems.", "Kittens should eat food labelled for growth until they are about one year old.", "English"),
    ("Bahnticket", "Deutschlandticket kündigen Frist", "Das Deutschlandticket ist monatlich kündbar; die Kündigung muss bis zum 10. des Vormonats beim Anbieter eingehen.", "Mit der BahnCard 25 erhält man 25 Prozent Rabatt auf Flexpreise und Sparpreise.", "German"),
    ("Mietvertrag", "Kündigungsfrist Mietwohnung Mieter", "Mieter können eine unbefristete Wohnung mit einer Frist von drei Monaten zum Monatsende kündigen.", "Die Mietkaution darf höchstens drei Nettokaltmieten betragen.", "German"),
    ("Sauerteig", "Sauerteig wie lange gehen lassen", "Ein Roggensauerteig braucht bei 26 Grad etwa 12 bis 16 Stunden, bis er reif und säuerlich ist.", "Hefeteig verdoppelt sein Volumen an einem warmen Ort meist in einer Stunde.", "German"),
    ("Fahrradlicht", "Fahrrad Licht Pflicht tagsüber", "Fahrräder müssen eine fest angebrachte Beleuchtung haben; einschalten muss man sie bei Dunkelheit und schlechter Sicht.", "Ein Fahrradhelm ist in Deutschland für Erwachsene nicht vorgeschrieben.", "German"),
    ("carte vitale", "comment obtenir une carte vitale", "La carte Vitale se demande en ligne sur le compte ameli avec une photo et une pièce d'identité; elle arrive en deux à trois semaines.", "La mutuelle complète le remboursement de la Sécurité sociale pour les soins courants.", "French"),
    ("croissant", "pourquoi mes croissants ne sont pas feuilletés", "Si le beurre fond pendant le tourage, les couches se mélangent: il faut garder la pâte et le beurre froids entre chaque tour.", "Le pain au chocolat contient deux barres de chocolat noir roulées dans la pâte.", "French"),
    ("permis", "durée validité permis de conduire", "Le permis de conduire au format carte bancaire est valable quinze ans, puis il doit être renouvelé sans examen.", "Le code de la route se passe dans un centre agréé avec 35 bonnes réponses sur 40.", "French"),
    ("paella", "receta paella valenciana ingredientes", "La paella valenciana lleva arroz, pollo, conejo, judía verde, garrofón, tomate, aceite, azafrán y romero.", "El arroz negro se tiñe con tinta de calamar y se sirve con alioli.", "Spanish"),
    ("NIE", "cómo solicitar el NIE en España", "El NIE se pide con cita previa en la oficina de extranjería o en una comisaría, con el formulario EX-15 y el pasaporte.", "La tarjeta sanitaria da acceso a la sanidad pública de la comunidad autónoma.", "Spanish"),
    ("PESEL", "jak uzyskać numer PESEL", "Numer PESEL nadaje urząd gminy przy zameldowaniu lub na wniosek cudzoziemca, który musi podać podstawę prawną.", "Dowód osobisty jest ważny dziesięć lat dla osób dorosłych.", "Polish"),
    ("納豆", "納豆 効果 毎日", "納豆にはナットウキナーゼやビタミンK2が含まれ、毎日一パック食べると骨や血液の健康に役立つとされる。", "味噌は大豆と麹と塩を発酵させて作る調味料である。", "Japanese"),
    ("отпуск", "сколько дней отпуска положено по закону", "По Трудовому кодексу работнику положен ежегодный оплачиваемый отпуск не менее 28 календарных дней.", "Больничный лист оплачивается в зависимости от страхового стажа работника.", "Russian"),
    ("pizza", "temperatura forno pizza napoletana", "La pizza napoletana cuoce in 60-90 secondi in un forno a legna a circa 430-480 gradi.", "La focaccia genovese si condisce con olio, acqua e sale grosso prima della cottura.", "Italian"),
    ("高铁", "高铁 儿童票 身高", "铁路规定身高1.2米至1.5米的儿童购买儿童票，超过1.5米需购买全价票。", "高铁列车的最高运营速度为每小时350公里。", "Chinese"),
    ("KTP", "cara membuat KTP elektronik", "KTP elektronik dibuat di kantor Disdukcapil dengan membawa kartu keluarga, lalu dilakukan perekaman sidik jari dan foto.", "Paspor Indonesia berlaku selama sepuluh tahun untuk paspor elektronik.", "Indonesian"),
    ("fietsen", "fiets verlichting verplicht", "In Nederland moet je fiets in het donker een wit of geel voorlicht en een rood achterlicht hebben.", "Een ov-fiets huur je per dag bij veel treinstations.", "Dutch"),
    ("chá", "quanto tempo deixar o chá verde em infusão", "O chá verde fica melhor com água a 70-80 graus e infusão de dois a três minutos, para não amargar.", "O chá preto é totalmente oxidado antes de ser seco.", "Portuguese"),
    ("sleep", "how many hours of sleep do teenagers need", "Teenagers need about eight to ten hours of sleep a night; their body clock shifts later during puberty.", "Adults over 65 often wake earlier and sleep more lightly.", "English"),
    ("vinegar", "remove limescale from kettle", "Fill the kettle halfway with equal parts white vinegar and water, boil, leave for an hour, then rinse well.", "Stainless steel kettles heat water faster than glass ones.", "English"),
    ("interest", "compound interest formula monthly", "With monthly compounding the balance is P times (1 + r/12) to the power 12t, where r is the annual rate and t the years.", "Simple interest is the principal times the rate times the time, with no interest on interest.", "English"),
    ("tyres", "when to change winter tyres", "Winter tyres pay off once temperatures stay below 7 degrees Celsius, when summer rubber hardens and loses grip.", "Tyre tread must be at least 1.6 millimetres deep by law in the EU.", "English"),
    ("oak", "how to tell the age of an oak tree", "Measure the trunk's girth at chest height in centimetres and divide by about 2.5 for an open-grown oak to estimate its age in years.", "Oak trees produce acorns from around 40 years of age.", "English"),
]

CLASSIFY = [  # (instruction, text, label, misleading label, language)
    ("Classify the sentiment of a product review as positive, negative or neutral.", "The blender crushed ice in seconds and is easy to clean. Best purchase this year.", "positive", "negative", "English"),
    ("Classify the sentiment of a product review as positive, negative or neutral.", "Stopped charging after two weeks and support never answered my emails.", "negative", "positive", "English"),
    ("Classify the sentiment of a product review as positive, negative or neutral.", "It does what the box says. Nothing more, nothing less.", "neutral", "positive", "English"),
    ("Classify a customer message into billing, technical support or shipping.", "I was charged twice for the same order last Tuesday, please refund one payment.", "billing", "shipping", "English"),
    ("Classify a customer message into billing, technical support or shipping.", "The app crashes every time I open the settings page on my phone.", "technical support", "billing", "English"),
    ("Classify a customer message into billing, technical support or shipping.", "My parcel has been stuck in the depot for five days with no update.", "shipping", "technical support", "English"),
    ("Classify a news headline by topic.", "Central bank raises interest rates by a quarter point to fight inflation", "economy", "sports", "English"),
    ("Classify a news headline by topic.", "Striker scores twice as underdogs reach the cup final", "sports", "politics", "English"),
    ("Classify a news headline by topic.", "Parliament passes new law on data protection after long debate", "politics", "economy", "English"),
    ("Classify a news headline by topic.", "New telescope images show water vapour around a distant exoplanet", "science", "sports", "English"),
    ("Identify the intent of a banking app query.", "how do I freeze my card I think I lost it", "card lost or stolen", "card delivery", "English"),
    ("Identify the intent of a banking app query.", "why is my transfer still pending after two days", "pending transfer", "exchange rate", "English"),
    ("Identify the intent of a banking app query.", "what rate do you use to convert euros to dollars", "exchange rate", "pending transfer", "English"),
    ("Identify the intent of a banking app query.", "when will my new card arrive", "card delivery", "card lost or stolen", "English"),
    ("Determine whether a tweet expresses an emotion of joy, anger, sadness or fear.", "Finally got the job offer!!! I can't stop smiling", "joy", "sadness", "English"),
    ("Determine whether a tweet expresses an emotion of joy, anger, sadness or fear.", "Three hours waiting at the gate and they just cancelled the flight. Unbelievable.", "anger", "joy", "English"),
    ("Determine whether a tweet expresses an emotion of joy, anger, sadness or fear.", "Our old dog passed away this morning. The house feels so empty.", "sadness", "anger", "English"),
    ("Determine whether a tweet expresses an emotion of joy, anger, sadness or fear.", "Hearing noises downstairs and everyone else is asleep", "fear", "joy", "English"),
    ("Klassifiziere die Stimmung einer Hotelbewertung als positiv oder negativ.", "Das Zimmer war sauber, das Frühstück reichhaltig und das Personal sehr freundlich.", "positiv", "negativ", "German"),
    ("Klassifiziere die Stimmung einer Hotelbewertung als positiv oder negativ.", "Laut, schmutzig und viel zu teuer für das, was geboten wird.", "negativ", "positiv", "German"),
    ("Klassifiziere eine Schlagzeile nach Ressort.", "Bundesliga: Dortmund gewinnt das Derby mit 3:1", "Sport", "Wirtschaft", "German"),
    ("Klassifiziere eine Schlagzeile nach Ressort.", "DAX schließt nach Zinsentscheid im Plus", "Wirtschaft", "Sport", "German"),
    ("Classer un avis de restaurant comme positif ou négatif.", "Plats délicieux, service rapide, on reviendra sans hésiter.", "positif", "négatif", "French"),
    ("Classer un avis de restaurant comme positif ou négatif.", "Attente interminable et viande trop cuite, très déçu.", "négatif", "positif", "French"),
    ("Classer une question d'utilisateur par thème.", "Comment changer le mot de passe de ma boîte mail ?", "informatique", "cuisine", "French"),
    ("Classer une question d'utilisateur par thème.", "Combien de temps faut-il cuire un œuf mollet ?", "cuisine", "informatique", "French"),
    ("Clasifica la reseña de una película como positiva o negativa.", "Una historia conmovedora con actuaciones brillantes.", "positiva", "negativa", "Spanish"),
    ("Clasifica la reseña de una película como positiva o negativa.", "Aburrida, larga y con un final absurdo.", "negativa", "positiva", "Spanish"),
    ("商品レビューの感情を肯定的か否定的かに分類する。", "配送が早く、品質もとても良かったです。", "肯定的", "否定的", "Japanese"),
    ("商品レビューの感情を肯定的か否定的かに分類する。", "一週間で壊れました。二度と買いません。", "否定的", "肯定的", "Japanese"),
    ("Классифицируйте отзыв о товаре как положительный или отрицательный.", "Отличный чайник, быстро кипятит и не шумит.", "положительный", "отрицательный", "Russian"),
    ("Классифицируйте отзыв о товаре как положительный или отрицательный.", "Сломался через неделю, деньги не вернули.", "отрицательный", "положительный", "Russian"),
    ("Sklasyfikuj opinię o aplikacji jako pozytywną lub negatywną.", "Aplikacja działa płynnie i ma przejrzysty interfejs.", "pozytywna", "negatywna", "Polish"),
    ("Sklasyfikuj opinię o aplikacji jako pozytywną lub negatywną.", "Ciągle się zawiesza i wylogowuje mnie bez powodu.", "negatywna", "pozytywna", "Polish"),
]

STS = [  # (s1, paraphrase, weaker match, language)
    ("A man is playing a guitar on stage.", "A musician performs with his guitar in front of an audience.", "A man is tuning a piano in a shop.", "English"),
    ("The cat is sleeping on the windowsill.", "A cat naps by the window.", "The dog is barking at the window.", "English"),
    ("Two children are building a sandcastle.", "A pair of kids make a castle out of sand on the beach.", "Two children are swimming in the sea.", "English"),
    ("The train was delayed by an hour.", "The train arrived sixty minutes late.", "The train was cancelled because of snow.", "English"),
    ("She forgot her umbrella at home.", "She left her umbrella in the house.", "She bought a new umbrella at the station.", "English"),
    ("The company reported record profits.", "The firm announced its highest earnings ever.", "The company reported a loss for the quarter.", "English"),
    ("A woman is slicing onions.", "A woman cuts an onion into pieces.", "A woman is peeling potatoes.", "English"),
    ("The museum is closed on Mondays.", "On Mondays the museum does not open.", "The museum is free on Sundays.", "English"),
    ("He runs five kilometres every morning.", "Every morning he goes for a 5 km run.", "He walks his dog every evening.", "English"),
    ("The price of petrol rose again.", "Fuel prices went up once more.", "The price of bread fell slightly.", "English"),
    ("The meeting was moved to Thursday.", "The meeting has been rescheduled for Thursday.", "The meeting lasted until Thursday night.", "English"),
    ("A plane is taking off.", "An airplane leaves the runway.", "A plane is being refuelled.", "English"),
    ("The baby is laughing.", "The infant giggles happily.", "The baby is crying loudly.", "English"),
    ("Die Kinder spielen im Garten.", "Im Garten spielen die Kinder.", "Die Kinder schlafen im Zimmer.", "German"),
    ("Der Zug fährt um acht Uhr ab.", "Um acht Uhr fährt der Zug los.", "Der Bus kommt um acht Uhr an.", "German"),
    ("Es regnet seit gestern ununterbrochen.", "Seit gestern hört der Regen nicht auf.", "Gestern schien den ganzen Tag die Sonne.", "German"),
    ("Le chat dort sur le canapé.", "Un chat fait la sieste sur le sofa.", "Le chien mange dans la cuisine.", "French"),
    ("Nous partons en vacances demain.", "Demain, nous partons en congé.", "Nous rentrons de vacances demain.", "French"),
    ("Le magasin ouvre à neuf heures.", "La boutique ouvre ses portes à 9 h.", "Le magasin ferme à neuf heures.", "French"),
    ("El niño lee un libro en la cama.", "Un chico está leyendo un libro acostado.", "El niño juega al fútbol en el parque.", "Spanish"),
    ("La reunión empieza a las diez.", "La junta comienza a las 10.", "La reunión terminó a las diez.", "Spanish"),
    ("Hace mucho calor hoy.", "Hoy la temperatura es muy alta.", "Hoy hace frío y llueve.", "Spanish"),
    ("Il treno è in ritardo.", "Il treno arriva in ritardo.", "Il treno è stato cancellato.", "Italian"),
    ("La biblioteca chiude alle sei.", "Alle sei la biblioteca chiude.", "La biblioteca apre alle sei.", "Italian"),
    ("Кошка спит на диване.", "Кот дремлет на диване.", "Собака лает во дворе.", "Russian"),
    ("Магазин открывается в девять.", "Магазин начинает работу в 9 часов.", "Магазин закрывается в девять.", "Russian"),
    ("猫がソファで寝ている。", "ソファの上で猫が眠っている。", "犬が庭で走っている。", "Japanese"),
    ("明日は雨が降るでしょう。", "明日は雨の予報です。", "明日は晴れるでしょう。", "Japanese"),
    ("Kot śpi na parapecie.", "Kot drzemie przy oknie.", "Pies szczeka na podwórku.", "Polish"),
    ("Pociąg odjeżdża o ósmej.", "O ósmej pociąg rusza.", "Autobus przyjeżdża o ósmej.", "Polish"),
    ("今天天气很好。", "今天是个好天气。", "今天下大雨。", "Chinese"),
    ("他每天早上跑步。", "他每天早晨都去跑步。", "他每天晚上看电视。", "Chinese"),
    ("De winkel gaat om negen uur open.", "Om negen uur opent de winkel.", "De winkel sluit om negen uur.", "Dutch"),
    ("A criança está lendo um livro.", "O menino lê um livro.", "A criança está jogando bola.", "Portuguese"),
]

BITEXT = [  # (English, translation, near-miss translation, language)
    ("Where is the nearest train station?", "Wo ist der nächste Bahnhof?", "Wo ist die nächste Bushaltestelle?", "German"),
    ("I would like a table for two, please.", "Ich hätte gern einen Tisch für zwei Personen.", "Ich hätte gern ein Zimmer für zwei Nächte.", "German"),
    ("The museum opens at ten.", "Das Museum öffnet um zehn.", "Das Museum schließt um zehn.", "German"),
    ("Can you help me carry this box?", "Kannst du mir helfen, diese Kiste zu tragen?", "Kannst du mir diese Kiste schicken?", "German"),
    ("It is raining again today.", "Heute regnet es schon wieder.", "Heute scheint wieder die Sonne.", "German"),
    ("How much does this cost?", "Combien ça coûte ?", "Combien de temps ça dure ?", "French"),
    ("I have lost my keys.", "J'ai perdu mes clés.", "J'ai trouvé mes clés.", "French"),
    ("The shop closes at seven.", "Le magasin ferme à sept heures.", "Le magasin ouvre à sept heures.", "French"),
    ("We are going to the beach tomorrow.", "Nous allons à la plage demain.", "Nous sommes allés à la plage hier.", "French"),
    ("My sister lives in Lyon.", "Ma sœur habite à Lyon.", "Mon frère travaille à Lyon.", "French"),
    ("The bill, please.", "La cuenta, por favor.", "El menú, por favor.", "Spanish"),
    ("I don't understand the question.", "No entiendo la pregunta.", "No conozco la respuesta.", "Spanish"),
    ("The children are playing in the park.", "Los niños juegan en el parque.", "Los niños duermen en casa.", "Spanish"),
    ("We need more time.", "Necesitamos más tiempo.", "Necesitamos más dinero.", "Spanish"),
    ("Good morning, how are you?", "Buongiorno, come stai?", "Buonanotte, dove sei?", "Italian"),
    ("The train is late again.", "Il treno è di nuovo in ritardo.", "Il treno è di nuovo in anticipo.", "Italian"),
    ("I like reading books.", "Lubię czytać książki.", "Lubię pisać listy.", "Polish"),
    ("Where is the pharmacy?", "Gdzie jest apteka?", "Gdzie jest poczta?", "Polish"),
    ("The weather is nice today.", "Сегодня хорошая погода.", "Вчера была плохая погода.", "Russian"),
    ("I am learning Russian.", "Я учу русский язык.", "Я учу английский язык.", "Russian"),
    ("Thank you for your help.", "手伝ってくれてありがとう。", "来てくれてありがとう。", "Japanese"),
    ("The station is very crowded.", "駅はとても混んでいる。", "駅はとても静かだ。", "Japanese"),
    ("I drink tea every morning.", "我每天早上喝茶。", "我每天晚上喝咖啡。", "Chinese"),
    ("This book is very interesting.", "这本书很有意思。", "这部电影很无聊。", "Chinese"),
    ("The market is open on Saturday.", "Pasar buka pada hari Sabtu.", "Pasar tutup pada hari Minggu.", "Indonesian"),
    ("I want to buy a ticket.", "Saya ingin membeli tiket.", "Saya ingin menjual mobil.", "Indonesian"),
    ("The bicycle is in the garage.", "De fiets staat in de garage.", "De auto staat op straat.", "Dutch"),
    ("We eat dinner at six.", "We eten om zes uur.", "We ontbijten om zes uur.", "Dutch"),
    ("The door is open.", "A porta está aberta.", "A janela está fechada.", "Portuguese"),
    ("She speaks three languages.", "Ela fala três línguas.", "Ela estuda duas línguas.", "Portuguese"),
    ("Turn left at the church.", "Gira a sinistra alla chiesa.", "Gira a destra alla scuola.", "Italian"),
    ("The coffee is too hot.", "Der Kaffee ist zu heiß.", "Der Tee ist zu kalt.", "German"),
    ("Please close the window.", "Fermez la fenêtre, s'il vous plaît.", "Ouvrez la porte, s'il vous plaît.", "French"),
    ("My phone battery is empty.", "La batería de mi teléfono está vacía.", "La pantalla de mi teléfono está rota.", "Spanish"),
]

SHORT_SHORT_TASK = "Given a question title from a forum, retrieve a question title that asks the same thing."
LONG_LONG_TASK = "Given a passage, retrieve a passage that covers the same subject in more detail."


def rec(n, group, instruction, query, positive, negative, language):
    return {"id": f"sample-{n:04d}", "task_group": group, "instruction": instruction, "query": query,
            "positive": positive, "negative": negative, "language": language, "model": "hand-written",
            "placeholders": {}, "sampling": {}, "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            "cost_usd": None, "raw": {}, "job": 0}


def main():
    out, n = [], 0
    for topic, question, fact, miss, lang in TOPICS:
        out.append(rec(n, "short-long", f"Given a search query about {topic}, retrieve web passages that answer it.",
                       question, fact, miss, lang)); n += 1
    for task, text, label, wrong, lang in CLASSIFY:
        out.append(rec(n, "long-short", task, text, label, wrong, lang)); n += 1
    for topic, question, fact, miss, lang in TOPICS:
        out.append(rec(n, "short-short", SHORT_SHORT_TASK, question, f"{topic}: {question}?", None, lang)); n += 1
    for topic, question, fact, miss, lang in TOPICS:
        out.append(rec(n, "long-long", LONG_LONG_TASK, f"{miss} {fact}", f"{fact} In short: {question}.", None, lang)); n += 1
    for s1, s2, s3, lang in STS:
        out.append(rec(n, "sts", "Retrieve semantically similar text.", s1, s2, s3, lang)); n += 1
    for en, tr, miss, lang in BITEXT:
        out.append(rec(n, "bitext", "Retrieve parallel sentences.", en, tr, miss, lang)); n += 1
    path = Path(__file__).with_name("synthetic_sample.jsonl")
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    print(f"{len(out)} records -> {path}")


if __name__ == "__main__":
    main()
