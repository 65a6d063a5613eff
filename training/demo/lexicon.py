"""The demo pair's bilingual lexicon: (French lemma, English lemma) per part of speech.

Everything the demo model can translate comes from here; pyrealb knows each lemma's
inflections (gender, plural, conjugation) in both languages.
"""

NOUNS = [  # (fr, en); the French gender comes from pyrealb's lexicon
    ("chat", "cat"), ("chien", "dog"), ("maison", "house"), ("livre", "book"), ("pomme", "apple"),
    ("voiture", "car"), ("table", "table"), ("femme", "woman"), ("homme", "man"), ("enfant", "child"),
    ("garçon", "boy"), ("fille", "girl"), ("ami", "friend"), ("frère", "brother"), ("sœur", "sister"),
    ("père", "father"), ("mère", "mother"), ("professeur", "teacher"), ("médecin", "doctor"), ("étudiant", "student"),
    ("ville", "city"), ("rue", "street"), ("jardin", "garden"), ("école", "school"), ("gare", "station"),
    ("train", "train"), ("porte", "door"), ("fenêtre", "window"), ("lettre", "letter"), ("journal", "newspaper"),
    ("fleur", "flower"), ("arbre", "tree"), ("oiseau", "bird"), ("cheval", "horse"), ("poisson", "fish"),
    ("gâteau", "cake"), ("tasse", "cup"), ("couteau", "knife"),
    ("chaise", "chair"), ("lit", "bed"), ("chambre", "room"), ("cuisine", "kitchen"), ("clé", "key"),
    ("sac", "bag"), ("chapeau", "hat"), ("robe", "dress"), ("chemise", "shirt"), ("chaussure", "shoe"),
    ("stylo", "pen"), ("ordinateur", "computer"), ("téléphone", "phone"), ("film", "film"), ("chanson", "song"),
    ("photo", "photo"), ("bateau", "boat"), ("avion", "plane"), ("vélo", "bicycle"), ("montagne", "mountain"),
    ("rivière", "river"), ("plage", "beach"), ("forêt", "forest"), ("village", "village"), ("pays", "country"),
    ("roi", "king"), ("reine", "queen"), ("voisin", "neighbour"), ("bébé", "baby"), ("musicien", "musician"),
    ("marché", "market"), ("magasin", "shop"), ("restaurant", "restaurant"), ("hôtel", "hotel"), ("musée", "museum"),
    ("église", "church"), ("pont", "bridge"), ("bouteille", "bottle"), ("verre", "glass"), ("assiette", "plate"),
    ("boîte", "box"), ("cadeau", "gift"), ("carte", "map"), ("tableau", "painting"), ("lampe", "lamp"),
]
PEOPLE = {"femme", "homme", "enfant", "garçon", "fille", "ami", "frère", "sœur", "père", "mère", "professeur",
          "médecin", "étudiant", "roi", "reine", "voisin", "bébé", "musicien"}
ANIMATE = PEOPLE | {"chat", "chien", "oiseau", "cheval", "poisson"}
PLACES = {"maison", "ville", "rue", "jardin", "école", "gare", "chambre", "cuisine", "forêt", "village", "pays",
          "plage", "montagne", "marché", "magasin", "restaurant", "hôtel", "musée", "église"}

ADJECTIVES = [  # French adjectives mostly follow the noun; pyrealb knows the few that precede it
    ("noir", "black"), ("blanc", "white"), ("rouge", "red"), ("vert", "green"), ("bleu", "blue"),
    ("jaune", "yellow"), ("petit", "small"), ("grand", "big"), ("vieux", "old"), ("jeune", "young"),
    ("beau", "beautiful"), ("nouveau", "new"), ("bon", "good"), ("mauvais", "bad"), ("joli", "pretty"),
    ("chaud", "hot"), ("froid", "cold"), ("lourd", "heavy"), ("léger", "light"), ("cher", "expensive"),
    ("rapide", "fast"), ("lent", "slow"), ("heureux", "happy"), ("triste", "sad"), ("malade", "sick"),
    ("fatigué", "tired"), ("riche", "rich"), ("pauvre", "poor"), ("propre", "clean"), ("sale", "dirty"),
    ("vide", "empty"), ("plein", "full"), ("célèbre", "famous"), ("étrange", "strange"), ("calme", "quiet"),
    ("gentil", "kind"),
]
PERSON_ADJECTIVES = {"jeune", "vieux", "heureux", "triste", "malade", "fatigué", "riche", "pauvre", "célèbre", "gentil",
                     "petit", "grand", "beau", "bon", "mauvais", "calme", "étrange"}

TRANSITIVE = [
    ("manger", "eat"), ("voir", "see"), ("aimer", "like"), ("acheter", "buy"), ("vendre", "sell"),
    ("lire", "read"), ("écrire", "write"), ("prendre", "take"), ("porter", "carry"), ("trouver", "find"),
    ("ouvrir", "open"), ("fermer", "close"), ("laver", "wash"), ("regarder", "watch"), ("connaître", "know"),
    ("visiter", "visit"), ("construire", "build"), ("peindre", "paint"), ("cuisiner", "cook"), ("boire", "drink"),
    ("perdre", "lose"), ("casser", "break"), ("réparer", "repair"), ("dessiner", "draw"), ("préparer", "prepare"),
    ("apporter", "bring"), ("choisir", "choose"), ("oublier", "forget"), ("nettoyer", "clean"), ("garder", "keep"),
    ("suivre", "follow"), ("aider", "help"), ("appeler", "call"), ("rencontrer", "meet"),
]
DITRANSITIVE = [("donner", "give"), ("montrer", "show"), ("envoyer", "send"), ("vendre", "sell"), ("apporter", "bring")]
INTRANSITIVE = [
    ("dormir", "sleep"), ("courir", "run"), ("chanter", "sing"), ("danser", "dance"), ("travailler", "work"),
    ("jouer", "play"), ("nager", "swim"), ("marcher", "walk"), ("pleurer", "cry"), ("rire", "laugh"),
]
LOCATIVE = [("dans", "in"), ("derrière", "behind"), ("sur", "on")]
TIME_ADVERBS = {"p": [("aujourd'hui", "today"), ("maintenant", "now")], "pc": [("hier", "yesterday")],
                "f": [("demain", "tomorrow")]}
NUMBERS = list(range(2, 13))
