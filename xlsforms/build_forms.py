"""Generate the CaseBridge XLSForms (screening, assistance, reintegration).

Run from the repository root:

    .venv/bin/python xlsforms/build_forms.py

The three .xlsx files are written next to this script. Output is byte-for-byte
deterministic, so regenerating without changes produces no diff.

Naming rules (HTCDS 2.0, Human Trafficking Case Data Standard, IOM, CC BY 4.0):

* A question that maps to an HTCDS field is named after that field in lower case,
  e.g. ``prs_Citizenship`` -> ``prs_citizenship``.
* Choice names are the HTCDS value names in snake_case, e.g.
  ``PossibleVictimOfTrafficking`` -> ``possible_victim_of_trafficking``.
  Countries are ISO 3166-1 alpha-3 codes, languages ISO 639-2/T codes.
* ``<field>_other`` is the "other, please specify" text for ``<field>``.
* ``cb_`` marks CaseBridge fields that have no HTCDS equivalent.
* ``cas_case_id`` (the case reference) and the follow-up ``case_id`` are also
  CaseBridge fields: HTCDS 2.0 defines no case identifier.

Each survey row is a tuple ``(type, name, label_en, label_fr, options)``; the
trailing items may be omitted. ``options`` holds the other columns:

    hint        (en, fr)
    required    True, or (message_en, message_fr) for a custom message
    constraint  (expression, message_en, message_fr)
    relevant, appearance, calculation, default, repeat_count   plain strings

The tables are kept out of `ruff format` (``# fmt: off``) so that they stay tables.
"""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.xml.functions import tostring

HERE = Path(__file__).resolve().parent

# Bump on every change to any form (YYYYMMDDnn). Designers editing an .xlsx by
# hand must bump the version on its settings sheet too.
VERSION = "2026112802"

EN = "English (en)"
FR = "French (fr)"

# fmt: off

# --------------------------------------------------------------------------------------
# Shared choice lists: list_name -> [(name, label_en, label_fr), ...]
# --------------------------------------------------------------------------------------

OTHER = ("other", "Other", "Autre")

# ISO 3166-1 alpha-3, chosen for relevance to trafficking routes; "other" for the rest.
COUNTRIES = [
    ("AFG", "Afghanistan", "Afghanistan"),
    ("ALB", "Albania", "Albanie"),
    ("DZA", "Algeria", "Algérie"),
    ("AGO", "Angola", "Angola"),
    ("ARG", "Argentina", "Argentine"),
    ("ARM", "Armenia", "Arménie"),
    ("AUS", "Australia", "Australie"),
    ("AUT", "Austria", "Autriche"),
    ("AZE", "Azerbaijan", "Azerbaïdjan"),
    ("BHR", "Bahrain", "Bahreïn"),
    ("BGD", "Bangladesh", "Bangladesh"),
    ("BLR", "Belarus", "Bélarus"),
    ("BEL", "Belgium", "Belgique"),
    ("BEN", "Benin", "Bénin"),
    ("BOL", "Bolivia", "Bolivie"),
    ("BIH", "Bosnia and Herzegovina", "Bosnie-Herzégovine"),
    ("BRA", "Brazil", "Brésil"),
    ("BRN", "Brunei Darussalam", "Brunéi Darussalam"),
    ("BGR", "Bulgaria", "Bulgarie"),
    ("BFA", "Burkina Faso", "Burkina Faso"),
    ("BDI", "Burundi", "Burundi"),
    ("KHM", "Cambodia", "Cambodge"),
    ("CMR", "Cameroon", "Cameroun"),
    ("CAN", "Canada", "Canada"),
    ("CAF", "Central African Republic", "République centrafricaine"),
    ("TCD", "Chad", "Tchad"),
    ("CHL", "Chile", "Chili"),
    ("CHN", "China", "Chine"),
    ("COL", "Colombia", "Colombie"),
    ("COG", "Congo", "Congo"),
    ("COD", "Congo, Democratic Republic of the", "Congo, République démocratique du"),
    ("CIV", "Côte d'Ivoire", "Côte d'Ivoire"),
    ("CUB", "Cuba", "Cuba"),
    ("CZE", "Czechia", "Tchéquie"),
    ("DOM", "Dominican Republic", "République dominicaine"),
    ("ECU", "Ecuador", "Équateur"),
    ("EGY", "Egypt", "Égypte"),
    ("SLV", "El Salvador", "El Salvador"),
    ("ERI", "Eritrea", "Érythrée"),
    ("ETH", "Ethiopia", "Éthiopie"),
    ("FRA", "France", "France"),
    ("GAB", "Gabon", "Gabon"),
    ("GMB", "Gambia", "Gambie"),
    ("GEO", "Georgia", "Géorgie"),
    ("DEU", "Germany", "Allemagne"),
    ("GHA", "Ghana", "Ghana"),
    ("GRC", "Greece", "Grèce"),
    ("GTM", "Guatemala", "Guatemala"),
    ("GIN", "Guinea", "Guinée"),
    ("HTI", "Haiti", "Haïti"),
    ("HND", "Honduras", "Honduras"),
    ("HKG", "Hong Kong, China", "Hong Kong (Chine)"),
    ("HUN", "Hungary", "Hongrie"),
    ("IND", "India", "Inde"),
    ("IDN", "Indonesia", "Indonésie"),
    ("IRN", "Iran", "Iran"),
    ("IRQ", "Iraq", "Iraq"),
    ("ISR", "Israel", "Israël"),
    ("ITA", "Italy", "Italie"),
    ("JPN", "Japan", "Japon"),
    ("JOR", "Jordan", "Jordanie"),
    ("KAZ", "Kazakhstan", "Kazakhstan"),
    ("KEN", "Kenya", "Kenya"),
    ("PRK", "Korea, Democratic People's Republic of",
     "Corée, République populaire démocratique de"),
    ("KOR", "Korea, Republic of", "Corée, République de"),
    ("KWT", "Kuwait", "Koweït"),
    ("KGZ", "Kyrgyzstan", "Kirghizistan"),
    ("LAO", "Lao People's Democratic Republic", "République démocratique populaire lao"),
    ("LBN", "Lebanon", "Liban"),
    ("LBR", "Liberia", "Libéria"),
    ("LBY", "Libya", "Libye"),
    ("MDG", "Madagascar", "Madagascar"),
    ("MWI", "Malawi", "Malawi"),
    ("MYS", "Malaysia", "Malaisie"),
    ("MLI", "Mali", "Mali"),
    ("MRT", "Mauritania", "Mauritanie"),
    ("MEX", "Mexico", "Mexique"),
    ("MDA", "Moldova, Republic of", "Moldova, République de"),
    ("MNG", "Mongolia", "Mongolie"),
    ("MNE", "Montenegro", "Monténégro"),
    ("MAR", "Morocco", "Maroc"),
    ("MOZ", "Mozambique", "Mozambique"),
    ("MMR", "Myanmar", "Myanmar"),
    ("NPL", "Nepal", "Népal"),
    ("NLD", "Netherlands", "Pays-Bas"),
    ("NIC", "Nicaragua", "Nicaragua"),
    ("NER", "Niger", "Niger"),
    ("NGA", "Nigeria", "Nigéria"),
    ("MKD", "North Macedonia", "Macédoine du Nord"),
    ("OMN", "Oman", "Oman"),
    ("PAK", "Pakistan", "Pakistan"),
    ("PRY", "Paraguay", "Paraguay"),
    ("PER", "Peru", "Pérou"),
    ("PHL", "Philippines", "Philippines"),
    ("POL", "Poland", "Pologne"),
    ("PRT", "Portugal", "Portugal"),
    ("QAT", "Qatar", "Qatar"),
    ("ROU", "Romania", "Roumanie"),
    ("RUS", "Russian Federation", "Fédération de Russie"),
    ("RWA", "Rwanda", "Rwanda"),
    ("SAU", "Saudi Arabia", "Arabie saoudite"),
    ("SEN", "Senegal", "Sénégal"),
    ("SRB", "Serbia", "Serbie"),
    ("SLE", "Sierra Leone", "Sierra Leone"),
    ("SGP", "Singapore", "Singapour"),
    ("SVK", "Slovakia", "Slovaquie"),
    ("SOM", "Somalia", "Somalie"),
    ("ZAF", "South Africa", "Afrique du Sud"),
    ("SSD", "South Sudan", "Soudan du Sud"),
    ("ESP", "Spain", "Espagne"),
    ("LKA", "Sri Lanka", "Sri Lanka"),
    ("SDN", "Sudan", "Soudan"),
    ("CHE", "Switzerland", "Suisse"),
    ("SYR", "Syrian Arab Republic", "République arabe syrienne"),
    ("TWN", "Taiwan, Province of China", "Taïwan, province de Chine"),
    ("TJK", "Tajikistan", "Tadjikistan"),
    ("TZA", "Tanzania, United Republic of", "Tanzanie, République-Unie de"),
    ("THA", "Thailand", "Thaïlande"),
    ("TLS", "Timor-Leste", "Timor-Leste"),
    ("TGO", "Togo", "Togo"),
    ("TUN", "Tunisia", "Tunisie"),
    ("TUR", "Türkiye", "Türkiye"),
    ("TKM", "Turkmenistan", "Turkménistan"),
    ("UGA", "Uganda", "Ouganda"),
    ("UKR", "Ukraine", "Ukraine"),
    ("ARE", "United Arab Emirates", "Émirats arabes unis"),
    ("GBR", "United Kingdom", "Royaume-Uni"),
    ("USA", "United States of America", "États-Unis d'Amérique"),
    ("UZB", "Uzbekistan", "Ouzbékistan"),
    ("VEN", "Venezuela", "Venezuela"),
    ("VNM", "Viet Nam", "Viet Nam"),
    ("YEM", "Yemen", "Yémen"),
    ("ZWE", "Zimbabwe", "Zimbabwe"),
    ("other", "Other country", "Autre pays"),
]

# ISO 639-2/T codes (HTCDS prs_PrimaryLanguage / prs_SecondaryLanguage).
LANGUAGES = [
    ("sqi", "Albanian", "Albanais"),
    ("amh", "Amharic", "Amharique"),
    ("ara", "Arabic", "Arabe"),
    ("ben", "Bengali", "Bengali"),
    ("bul", "Bulgarian", "Bulgare"),
    ("mya", "Burmese", "Birman"),
    ("zho", "Chinese", "Chinois"),
    ("eng", "English", "Anglais"),
    ("fil", "Filipino", "Filipino"),
    ("fra", "French", "Français"),
    ("ful", "Fulah", "Peul"),
    ("kat", "Georgian", "Géorgien"),
    ("deu", "German", "Allemand"),
    ("hat", "Haitian Creole", "Créole haïtien"),
    ("hau", "Hausa", "Haoussa"),
    ("hin", "Hindi", "Hindi"),
    ("ibo", "Igbo", "Igbo"),
    ("ind", "Indonesian", "Indonésien"),
    ("ita", "Italian", "Italien"),
    ("kar", "Karen languages", "Langues karen"),
    ("kaz", "Kazakh", "Kazakh"),
    ("khm", "Khmer", "Khmer"),
    ("kir", "Kyrgyz", "Kirghiz"),
    ("kur", "Kurdish", "Kurde"),
    ("lao", "Lao", "Lao"),
    ("msa", "Malay", "Malais"),
    ("nep", "Nepali", "Népalais"),
    ("orm", "Oromo", "Oromo"),
    ("pus", "Pashto", "Pachto"),
    ("fas", "Persian", "Persan"),
    ("pol", "Polish", "Polonais"),
    ("por", "Portuguese", "Portugais"),
    ("pan", "Punjabi", "Pendjabi"),
    ("ron", "Romanian", "Roumain"),
    ("rus", "Russian", "Russe"),
    ("shn", "Shan", "Shan"),
    ("sgn", "Sign language", "Langue des signes"),
    ("sin", "Sinhala", "Cingalais"),
    ("som", "Somali", "Somali"),
    ("spa", "Spanish", "Espagnol"),
    ("swa", "Swahili", "Swahili"),
    ("tgl", "Tagalog", "Tagalog"),
    ("tgk", "Tajik", "Tadjik"),
    ("tam", "Tamil", "Tamoul"),
    ("tha", "Thai", "Thaï"),
    ("tir", "Tigrinya", "Tigrigna"),
    ("tur", "Turkish", "Turc"),
    ("twi", "Twi", "Twi"),
    ("ukr", "Ukrainian", "Ukrainien"),
    ("urd", "Urdu", "Ourdou"),
    ("uzb", "Uzbek", "Ouzbek"),
    ("vie", "Vietnamese", "Vietnamien"),
    ("wol", "Wolof", "Wolof"),
    ("yor", "Yoruba", "Yoruba"),
    ("other", "Other language", "Autre langue"),
]

# HTCDS online platform list, shared by vic_RecruitmentWebsitesAndApps and
# vic_ExploitationWebsitesAndApps. Brand names are lower-cased, not split.
PLATFORMS = [
    ("facebook", "Facebook", "Facebook"),
    ("instagram", "Instagram", "Instagram"),
    ("whatsapp", "WhatsApp", "WhatsApp"),
    ("telegram", "Telegram", "Telegram"),
    ("facebook_messenger", "Facebook Messenger", "Facebook Messenger"),
    ("viber", "Viber", "Viber"),
    ("snapchat", "Snapchat", "Snapchat"),
    ("line", "Line", "Line"),
    ("4sale", "4Sale", "4Sale"),
    ("wechat", "WeChat", "WeChat"),
    ("qq", "QQ", "QQ"),
    ("qzone", "QZone", "QZone"),
    ("tiktok", "TikTok", "TikTok"),
    ("twitter", "Twitter (X)", "Twitter (X)"),
    OTHER,
]

REFERRAL_REASONS = [
    ("additional_services_required", "Additional services required",
     "Besoin de services supplémentaires"),
    ("migration_or_change_of_location", "Migration or change of location",
     "Migration ou changement de lieu"),
    OTHER,
]

CHOICES = {
    # HTCDS con_Consent is a checkbox; the standard's own XLSForm uses TRUE/FALSE.
    "boolean": [
        ("true", "Yes", "Oui"),
        ("false", "No", "Non"),
    ],
    "yes_no": [
        ("yes", "Yes", "Oui"),
        ("no", "No", "Non"),
    ],
    "yes_no_unknown": [
        ("yes", "Yes", "Oui"),
        ("no", "No", "Non"),
        ("unknown", "Don't know", "Ne sait pas"),
    ],
    # CaseBridge: the points of the HTCDS con_Consent guidance.
    "consent_information": [
        ("purpose", "The purpose of the interview", "L'objectif de l'entretien"),
        ("data_use", "The actual and potential use of the information collected",
         "L'utilisation actuelle et potentielle des informations recueillies"),
        ("research_use", "The use of non-identifying data for research",
         "L'utilisation de données non identifiantes à des fins de recherche"),
        ("right_of_access", "The right to request their personal data at any time",
         "Le droit de demander ses données personnelles à tout moment"),
        ("retention", "How long the data will be stored",
         "La durée de conservation des données"),
        ("withdrawal", "How to withdraw consent", "La procédure de retrait du consentement"),
    ],
    "country": COUNTRIES,
    # prs_Citizenship also needs "stateless" (ICAO Doc 9303 code XXA).
    "citizenship": COUNTRIES[:-1] + [
        ("XXA", "Stateless", "Apatride"),
        COUNTRIES[-1],
    ],
    "language": LANGUAGES,
    # prs_Gender
    "gender": [
        ("feminine", "Feminine", "Féminin"),
        ("masculine", "Masculine", "Masculin"),
        ("transgender_feminine", "Transgender feminine", "Transgenre féminin"),
        ("transgender_masculine", "Transgender masculine", "Transgenre masculin"),
        ("non_conforming", "Gender non-conforming", "Non conforme aux normes de genre"),
        ("non_specified_unknown", "Not specified / unknown", "Non précisé / inconnu"),
    ],
    # prs_MaritalStatus
    "marital_status": [
        ("single", "Single", "Célibataire"),
        ("married", "Married", "Marié(e)"),
        ("widowed", "Widowed", "Veuf / veuve"),
        ("divorced", "Divorced", "Divorcé(e)"),
        ("separated", "Separated", "Séparé(e)"),
        ("registered_partnership", "Registered partnership", "Partenariat enregistré"),
    ],
    # prs_HighestLevelOfEducation (ISCED 2011 / CITE 2011)
    "education_level": [
        ("early_childhood_education", "Early childhood education",
         "Éducation de la petite enfance"),
        ("primary_education", "Primary education", "Enseignement primaire"),
        ("lower_secondary_education", "Lower secondary education",
         "Premier cycle de l'enseignement secondaire"),
        ("upper_secondary_education", "Upper secondary education",
         "Deuxième cycle de l'enseignement secondaire"),
        ("post_secondary_non_tertiary_education", "Post-secondary non-tertiary education",
         "Enseignement post-secondaire non supérieur"),
        ("short_cycle_tertiary_education", "Short-cycle tertiary education",
         "Enseignement supérieur de cycle court"),
        ("bachelors_or_equivalent_level", "Bachelor's or equivalent level",
         "Niveau licence ou équivalent"),
        ("masters_or_equivalent_level", "Master's or equivalent level",
         "Niveau master ou équivalent"),
        ("doctoral_or_equivalent_level", "Doctoral or equivalent level",
         "Niveau doctorat ou équivalent"),
    ],
    # vic_TraffickingStatus
    "trafficking_status": [
        ("possible_victim_of_trafficking", "Possible victim of trafficking",
         "Victime potentielle de la traite"),
        ("actual_victim_of_trafficking", "Actual victim of trafficking",
         "Victime avérée de la traite"),
        ("not_a_victim_of_trafficking", "Not a victim of trafficking",
         "N'est pas victime de la traite"),
    ],
    # vic_TraffickingStatusDecisionMakingOrg
    "decision_making_org": [
        ("police", "Police", "Police"),
        ("ngo", "NGO", "ONG"),
        ("court_or_prosecution", "Court or prosecution", "Tribunal ou ministère public"),
        ("non_police_governmental_organization", "Non-police governmental organisation",
         "Organisme public autre que la police"),
        OTHER,
    ],
    # vic_RelationshipToTrafficker ("unaquainted" is spelt as in HTCDS 2.0)
    "relationship_to_trafficker": [
        ("familial", "Family member", "Membre de la famille"),
        ("acquainted", "Acquaintance (known to the person)",
         "Connaissance (personne connue)"),
        ("unaquainted", "Stranger (not known to the person)",
         "Inconnu (personne non connue)"),
    ],
    "platform": PLATFORMS,
    # vic_MethodOfRecruitment
    "method_of_recruitment": [
        ("at_a_place_of_business", "At a place of business",
         "Dans un commerce ou une entreprise"),
        ("at_an_educational_institution", "At an educational institution",
         "Dans un établissement d'enseignement"),
        ("at_work", "At work", "Sur le lieu de travail"),
        ("through_online_social_networks", "Through online social networks",
         "Par les réseaux sociaux en ligne"),
        ("through_an_online_advertisement", "Through an online advertisement",
         "Par une annonce en ligne"),
        ("through_a_television_advert", "Through a television advert",
         "Par une publicité télévisée"),
        ("through_a_newspaper_advert", "Through a newspaper advert",
         "Par une annonce dans un journal"),
        ("through_family_or_family_events", "Through family or family events",
         "Par la famille ou lors d'événements familiaux"),
        ("through_friends_or_social_events", "Through friends or social events",
         "Par des amis ou lors d'événements sociaux"),
        OTHER,
    ],
    # vic_MethodsOfControl
    "methods_of_control": [
        ("physical_threats", "Physical threats", "Menaces physiques"),
        ("threats_law_enforcement", "Threats of law enforcement",
         "Menaces de dénonciation aux autorités"),
        ("threatens_children_family", "Threatens children / family",
         "Menaces envers les enfants ou la famille"),
        ("debt_bondage", "Debt bondage", "Servitude pour dettes"),
        ("false_promises", "False promises", "Fausses promesses"),
        ("physical_abuse", "Physical abuse", "Violences physiques"),
        ("sexual_abuse", "Sexual abuse", "Violences sexuelles"),
        ("takes_earnings", "Takes earnings", "Confiscation des revenus"),
        ("restricts_financial_access", "Restricts financial access",
         "Restriction de l'accès à l'argent"),
        ("restricts_medical_care", "Restricts medical care",
         "Restriction de l'accès aux soins médicaux"),
        ("withholds_necessities", "Withholds necessities",
         "Privation de biens de première nécessité"),
        ("psychological_abuse", "Psychological abuse", "Violences psychologiques"),
        ("psychoactive_substance", "Psychoactive substances", "Substances psychoactives"),
        ("excessive_working_hours", "Excessive working hours",
         "Horaires de travail excessifs"),
        ("withholds_documents", "Withholds documents", "Confiscation des documents"),
        OTHER,
    ],
    # vic_TypeOfExploitation
    "type_of_exploitation": [
        ("forced_labour", "Forced labour", "Travail forcé"),
        ("sexual_exploitation", "Sexual exploitation", "Exploitation sexuelle"),
        ("child_labour", "Child labour", "Travail des enfants"),
        ("forced_marriage", "Forced marriage", "Mariage forcé"),
        ("servitude", "Servitude", "Servitude"),
        ("forced_military_by_non_state_actors", "Forced military service (by non-state actors)",
         "Enrôlement forcé (par des acteurs non étatiques)"),
        ("organ_removal", "Organ removal", "Prélèvement d'organes"),
        ("forced_begging", "Forced begging", "Mendicité forcée"),
        ("forced_adoption", "Forced adoption", "Adoption forcée"),
        ("surrogacy", "Surrogacy", "Gestation pour autrui"),
        OTHER,
    ],
    # vic_ForcedLabourIndustry (ISIC Rev. 4 sections / CITI rév. 4)
    "forced_labour_industry": [
        ("a_agriculture_forestry_and_fishing", "Agriculture, forestry and fishing",
         "Agriculture, sylviculture et pêche"),
        ("b_mining_and_quarrying", "Mining and quarrying", "Activités extractives"),
        ("c_manufacturing", "Manufacturing", "Activités de fabrication"),
        ("d_electricity_gas_steam_and_air_conditioning_supply",
         "Electricity, gas, steam and air conditioning supply",
         "Production et distribution d'électricité, de gaz, de vapeur et climatisation"),
        ("e_water_supply_sewerage_waste_management",
         "Water supply; sewerage, waste management and remediation",
         "Distribution d'eau ; réseau d'assainissement ; gestion des déchets et remise en état"),
        ("f_construction", "Construction", "Construction"),
        ("g_wholesale_and_retail_trade_repair_of_motor_vehicles",
         "Wholesale and retail trade; repair of motor vehicles and motorcycles",
         "Commerce de gros et de détail ; réparation de véhicules automobiles et de motocycles"),
        ("h_transportation_and_storage", "Transportation and storage",
         "Transport et entreposage"),
        ("i_accommodation_and_food_service_activities",
         "Accommodation and food service activities",
         "Activités d'hébergement et de restauration"),
        ("j_information_and_communication", "Information and communication",
         "Information et communication"),
        ("k_financial_and_insurance_activities", "Financial and insurance activities",
         "Activités financières et d'assurance"),
        ("l_real_estate_activities", "Real estate activities", "Activités immobilières"),
        ("m_professional_scientific_and_technical_activities",
         "Professional, scientific and technical activities",
         "Activités professionnelles, scientifiques et techniques"),
        ("n_administrative_and_support_service_activities",
         "Administrative and support service activities",
         "Activités de services administratifs et d'appui"),
        ("o_public_administration_and_defence",
         "Public administration and defence; compulsory social security",
         "Administration publique et défense ; sécurité sociale obligatoire"),
        ("p_education", "Education", "Enseignement"),
        ("q_human_health_and_social_work_activities",
         "Human health and social work activities",
         "Activités pour la santé humaine et l'action sociale"),
        ("r_arts_entertainment_and_recreation", "Arts, entertainment and recreation",
         "Arts, spectacles et loisirs"),
        ("s_other_service_activities", "Other service activities",
         "Autres activités de services"),
        ("t_activities_of_households_as_employers",
         "Activities of households as employers (domestic work)",
         "Activités des ménages en tant qu'employeurs (travail domestique)"),
        ("u_activities_of_extraterritorial_organizations",
         "Activities of extraterritorial organizations and bodies",
         "Activités des organisations et organismes extraterritoriaux"),
    ],
    # vic_TypeOfSexExploitation
    "type_of_sex_exploitation": [
        ("prostitution", "Prostitution", "Prostitution"),
        ("pornography", "Pornography", "Pornographie"),
        ("remote_interactive_services", "Remote interactive services (e.g. webcam)",
         "Services interactifs à distance (p. ex. webcam)"),
        ("private_sexual_services", "Private sexual services", "Services sexuels privés"),
    ],
    # hte_Type
    "event_type": [
        ("recruitment", "Recruitment", "Recrutement"),
        ("transit", "Transit", "Transit"),
        ("exploitation", "Exploitation", "Exploitation"),
    ],
    # per_RoleInProcess
    "role_in_process": [
        ("travelling_partner", "Travelling partner", "Compagnon de voyage"),
        ("transporter", "Transporter", "Transporteur"),
        ("recruiter_or_intermediary", "Recruiter or intermediary", "Recruteur ou intermédiaire"),
        ("broker_travel_agent", "Broker / travel agent", "Courtier / agent de voyage"),
        ("transferred_individual", "Transferred the person", "A transféré la personne"),
        ("harboured_individual", "Harboured the person", "A hébergé la personne"),
        ("sold_individual", "Sold the person", "A vendu la personne"),
        ("bought_individual", "Bought the person", "A acheté la personne"),
        ("received_individual", "Received the person", "A accueilli la personne"),
        ("controlled_individual", "Controlled the person", "A contrôlé la personne"),
        ("smuggler", "Smuggler", "Passeur"),
        ("abuser", "Abuser", "Auteur de violences"),
        ("kidnapper", "Kidnapper", "Ravisseur"),
        ("exploiter", "Exploiter", "Exploiteur"),
        OTHER,
    ],
    # cas_Status
    "case_status": [
        ("active", "Active", "Actif"),
        ("follow_up", "Follow-up", "En suivi"),
        ("closed", "Closed", "Clôturé"),
        ("closed_referred", "Closed (referred)", "Clôturé (orienté)"),
    ],
    # cas_ReasonForIncomingReferral / cas_ReasonForOutgoingReferral (same HTCDS values)
    "incoming_referral_reason": REFERRAL_REASONS,
    "outgoing_referral_reason": REFERRAL_REASONS,
    # spl_Type
    "support_type": [
        ("education", "Education", "Éducation"),
        ("financial", "Financial", "Aide financière"),
        ("health", "Health", "Santé"),
        ("labour_exploitation_rehabilitation", "Labour exploitation rehabilitation",
         "Réadaptation après une exploitation par le travail"),
        ("legal", "Legal", "Aide juridique"),
        ("livelihood", "Livelihood", "Moyens de subsistance"),
        ("rights_based_training", "Rights-based training", "Formation fondée sur les droits"),
        ("sexual_exploitation_rehabilitation", "Sexual exploitation rehabilitation",
         "Réadaptation après une exploitation sexuelle"),
        ("social_care", "Social care", "Accompagnement social"),
    ],
    # org_Type
    "org_type": [
        ("ngo", "NGO", "ONG"),
        ("law_enforcement", "Law enforcement", "Forces de l'ordre"),
        ("health_service_organisation", "Health service organisation", "Service de santé"),
        ("central_government_organisation", "Central government organisation",
         "Administration centrale"),
        ("local_government_organisation", "Local government organisation",
         "Collectivité locale"),
        ("immigration_service", "Immigration service", "Service de l'immigration"),
        ("legal_service", "Legal service", "Service juridique"),
        ("corporate_business", "Corporate business", "Entreprise"),
        ("school_or_college", "School or college", "École ou établissement d'enseignement"),
    ],
    # CaseBridge (no HTCDS field)
    "reintegration_status": [
        ("not_started", "Not started", "Non commencée"),
        ("in_progress", "In progress", "En cours"),
        ("completed", "Completed", "Achevée"),
        ("interrupted", "Interrupted", "Interrompue"),
        ("declined", "Declined by the person", "Refusée par la personne"),
    ],
    "risk_level": [
        ("low", "Low", "Faible"),
        ("medium", "Medium", "Moyen"),
        ("high", "High", "Élevé"),
    ],
}

# --------------------------------------------------------------------------------------
# Shared expressions and row helpers
# --------------------------------------------------------------------------------------

CONSENTED = "${con_consent} = 'true'"
REFUSED = "${con_consent} = 'false'"
# Non-relevant questions are empty, so this also implies consent was given.
VICTIM = (
    "${vic_traffickingstatus} = 'possible_victim_of_trafficking' or "
    "${vic_traffickingstatus} = 'actual_victim_of_trafficking'"
)

NOT_FUTURE = (
    ". <= today()",
    "The date cannot be in the future.",
    "La date ne peut pas être dans le futur.",
)
NOT_PAST = (
    ". >= today()",
    "The date cannot be in the past.",
    "La date ne peut pas être dans le passé.",
)
# E.164, as recommended by HTCDS for phone fields.
PHONE = (
    "regex(., '^\\+?[1-9][0-9]{1,14}$')",
    "Use international format: optional +, country code and number, digits only, "
    "at most 15 digits (e.g. +66812345678).",
    "Utilisez le format international : + facultatif, indicatif du pays et numéro, "
    "chiffres uniquement, 15 chiffres au maximum (p. ex. +66812345678).",
)
PHONE_HINT = (
    "International format, e.g. +66812345678",
    "Format international, p. ex. +66812345678",
)
SELECT_ALL = ("Select all that apply.", "Sélectionnez toutes les réponses applicables.")
REQUIRED_MESSAGE = ("This question is required.", "Cette question est obligatoire.")


def other_specify(field, label_en, label_fr):
    """'Other, please specify' text, shown only when `other` is chosen in `field`."""
    return ("text", f"{field}_other", label_en, label_fr,
            {"relevant": f"selected(${{{field}}}, 'other')", "required": True})


def case_rows():
    """Case status and notes, shared by the two follow-up forms."""
    return [
        ("begin_group", "case", "Case follow-up", "Suivi du dossier",
         {"appearance": "field-list", "relevant": CONSENTED}),
        ("select_one case_status", "cas_status", "Case status", "Statut du dossier",
         {"required": True}),
        ("text", "cas_reasonforcaseclosure", "Reason for case closure",
         "Motif de clôture du dossier",
         {"appearance": "multiline", "required": True,
          "relevant": "${cas_status} = 'closed' or ${cas_status} = 'closed_referred'"}),
        ("select_one yes_no", "cb_follow_up_needed", "Is further follow-up needed?",
         "Un suivi supplémentaire est-il nécessaire ?", {"required": True}),
        ("date", "cb_follow_up_date", "Planned follow-up date", "Date de suivi prévue",
         {"relevant": "${cb_follow_up_needed} = 'yes'", "constraint": NOT_PAST}),
        ("text", "cco_casecomment", "Notes", "Notes",
         {"appearance": "multiline",
          "hint": ("Factual case update. Avoid unnecessary personal details.",
                   "Mise à jour factuelle du dossier. Évitez les détails personnels "
                   "superflus.")}),
        ("end_group",),
    ]


def follow_up_consent_rows():
    """Case reference and consent re-check, shared by the two follow-up forms."""
    return [
        ("start", "start"),
        ("end", "end"),
        ("today", "today"),
        ("begin_group", "consent", "Case and consent", "Dossier et consentement",
         {"appearance": "field-list"}),
        # The case list reaches phones as an entity list (cases.csv), mission-filtered.
        ("select_one_from_file cases.csv", "case_id", "Case", "Dossier",
         {"required": True, "appearance": "autocomplete",
          "hint": ("Type the first characters of the case reference shown at the end of "
                   "the screening form (e.g. CB-3f2a9c1b).",
                   "Tapez les premiers caractères de la référence affichée à la fin du "
                   "formulaire de détection (p. ex. CB-3f2a9c1b).")}),
        ("select_one boolean", "con_consent",
         "Does the person still consent to the recording and storage of their personal data?",
         "La personne consent-elle toujours à l'enregistrement et à la conservation de ses "
         "données personnelles ?",
         {"required": True}),
        ("note", "note_consent_withdrawn",
         "Consent withdrawn: do not record any other information. Save the form and inform "
         "your data protection focal point so that the withdrawal is applied to the case.",
         "Consentement retiré : n'enregistrez aucune autre information. Enregistrez le "
         "formulaire et informez votre point focal pour la protection des données afin que "
         "le retrait soit appliqué au dossier.",
         {"relevant": REFUSED}),
        ("select_one boolean", "cb_consent_share",
         "Does the person still agree that their information may be shared with other "
         "organisations or missions for assistance and referral?",
         "La personne accepte-t-elle toujours que ses informations soient partagées avec "
         "d'autres organisations ou missions à des fins d'assistance et d'orientation ?",
         {"required": True, "relevant": CONSENTED}),
        ("end_group",),
    ]


def risk_question(name, label_en, label_fr):
    """HTCDS 2.0 'Assessment and Planning' example question (no HTCDS field name yet)."""
    return ("select_one yes_no_unknown", name, label_en, label_fr, {"required": True})


# --------------------------------------------------------------------------------------
# 1. Victim screening and registration
# --------------------------------------------------------------------------------------

SCREENING = [
    ("start", "start"),
    ("end", "end"),
    ("today", "today"),
    # Case reference for the follow-up forms. once() keeps it stable when a saved
    # form is opened again for editing.
    ("calculate", "cas_case_id", "", "", {"calculation": "once(uuid())"}),

    # -- Consent (HTCDS con_) ----------------------------------------------------------
    ("begin_group", "consent", "Consent", "Consentement", {"appearance": "field-list"}),
    ("note", "note_consent_intro",
     "Before starting, explain in a language the person understands: the purpose of the "
     "interview; how the information will be used and who may see it; that non-identifying "
     "information may be used for research and statistics; that they can ask for their "
     "personal data at any time; how long it will be kept; and how to withdraw consent. "
     "Participation is voluntary.",
     "Avant de commencer, expliquez dans une langue que la personne comprend : l'objectif de "
     "l'entretien ; comment les informations seront utilisées et qui pourra y accéder ; que "
     "des informations non identifiantes pourront être utilisées à des fins de recherche et "
     "de statistiques ; qu'elle peut demander ses données personnelles à tout moment ; "
     "combien de temps elles seront conservées ; et comment retirer son consentement. La "
     "participation est volontaire."),
    ("select_multiple consent_information", "cb_consent_informed",
     "Confirm that each point has been explained to the person",
     "Confirmez que chaque point a été expliqué à la personne",
     {"required": True,
      "constraint": ("count-selected(.) = 6",
                     "All points must be explained before asking for consent.",
                     "Tous les points doivent être expliqués avant de demander le "
                     "consentement.")}),
    ("select_one boolean", "con_consent",
     "Does the person consent to the interview and to the recording and storage of their "
     "personal data as explained?",
     "La personne consent-elle à l'entretien ainsi qu'à l'enregistrement et à la "
     "conservation de ses données personnelles, selon les modalités qui lui ont été "
     "expliquées ?",
     {"required": True,
      "hint": ("For a child, obtain the child's assent and the consent of a parent, guardian "
               "or appointed representative, unless this would put the child at risk.",
               "Pour un enfant, obtenez l'assentiment de l'enfant et le consentement d'un "
               "parent, d'un tuteur ou d'un représentant désigné, sauf si cela met l'enfant "
               "en danger.")}),
    ("note", "note_consent_refused",
     "Consent refused: stop the interview here. Thank the person, do not record any other "
     "information, then go to the end of the form and save it.",
     "Consentement refusé : arrêtez l'entretien ici. Remerciez la personne, n'enregistrez "
     "aucune autre information, puis allez à la fin du formulaire et enregistrez-le.",
     {"relevant": REFUSED}),
    ("select_one boolean", "cb_consent_share",
     "Does the person agree that their information may be shared with other organisations "
     "or missions for assistance and referral?",
     "La personne accepte-t-elle que ses informations soient partagées avec d'autres "
     "organisations ou missions à des fins d'assistance et d'orientation ?",
     {"required": True, "relevant": CONSENTED}),
    ("select_one boolean", "cb_consent_research",
     "Does the person agree that their information, with identifying details removed, may be "
     "used for research and aggregate statistics?",
     "La personne accepte-t-elle que ses informations, une fois les éléments d'identification "
     "supprimés, soient utilisées à des fins de recherche et de statistiques agrégées ?",
     {"required": True, "relevant": CONSENTED}),
    ("end_group",),

    # -- Person (HTCDS prs_) -----------------------------------------------------------
    ("begin_group", "person_identity", "Personal details", "Informations personnelles",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("text", "prs_firstname", "First name", "Prénom",
     {"required": True,
      "hint": ("The name the person wishes to be recorded under; an alias is acceptable.",
               "Le nom sous lequel la personne souhaite être enregistrée ; un pseudonyme "
               "est accepté.")}),
    ("text", "prs_middlename", "Middle name", "Deuxième prénom"),
    ("text", "prs_secondname", "Family name", "Nom de famille"),
    ("select_one gender", "prs_gender", "Gender", "Genre", {"required": True}),
    ("select_one yes_no", "cb_birthdate_known", "Is the person's date of birth known?",
     "La date de naissance de la personne est-elle connue ?", {"required": True}),
    ("date", "prs_birthdate", "Date of birth", "Date de naissance",
     {"required": True, "relevant": "${cb_birthdate_known} = 'yes'",
      "constraint": (". <= today() and "
                     "(decimal-date-time(today()) - decimal-date-time(.)) div 365.25 <= 120",
                     "The date of birth cannot be in the future or more than 120 years ago.",
                     "La date de naissance ne peut pas être dans le futur ni remonter à plus "
                     "de 120 ans.")}),
    ("integer", "cb_age_estimate", "Estimated age (in years)", "Âge estimé (en années)",
     {"required": True, "relevant": "${cb_birthdate_known} = 'no'",
      "constraint": (". >= 0 and . <= 120", "Age must be between 0 and 120.",
                     "L'âge doit être compris entre 0 et 120 ans.")}),
    ("calculate", "cb_age_years", "", "",
     {"calculation": "if(${prs_birthdate} != '', int((decimal-date-time(today()) - "
                     "decimal-date-time(${prs_birthdate})) div 365.25), ${cb_age_estimate})"}),
    ("end_group",),

    ("begin_group", "person_background", "Background", "Profil",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("select_multiple citizenship", "prs_citizenship", "Citizenship", "Nationalité(s)",
     {"appearance": "minimal", "hint": SELECT_ALL}),
    other_specify("prs_citizenship", "Other citizenship", "Autre nationalité"),
    ("text", "prs_identitynumber", "Identity document number", "Numéro de pièce d'identité",
     {"hint": ("Record only if needed for assistance.",
               "À n'enregistrer que si cela est nécessaire pour l'assistance.")}),
    ("select_one language", "prs_primarylanguage", "Primary language", "Langue principale",
     {"appearance": "minimal"}),
    other_specify("prs_primarylanguage", "Other primary language", "Autre langue principale"),
    ("select_one language", "prs_secondarylanguage", "Secondary language", "Langue secondaire",
     {"appearance": "minimal"}),
    other_specify("prs_secondarylanguage", "Other secondary language",
                  "Autre langue secondaire"),
    ("select_one marital_status", "prs_maritalstatus", "Marital status",
     "Situation matrimoniale"),
    ("integer", "prs_numberofchildren", "Number of children", "Nombre d'enfants",
     {"constraint": (". >= 0 and . <= 30", "Enter a number between 0 and 30.",
                     "Saisissez un nombre compris entre 0 et 30.")}),
    ("select_one education_level", "prs_highestlevelofeducation",
     "Highest level of education completed", "Plus haut niveau d'études atteint",
     {"appearance": "minimal"}),
    ("end_group",),

    ("begin_group", "person_contact", "Contact details", "Coordonnées",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("note", "note_contact",
     "Record contact details only if the person agrees and it is safe to contact them this "
     "way.",
     "N'enregistrez les coordonnées que si la personne est d'accord et qu'il est sans danger "
     "de la contacter de cette manière."),
    ("text", "prs_mobilephone", "Mobile phone", "Téléphone mobile",
     {"hint": PHONE_HINT, "constraint": PHONE}),
    ("text", "prs_homephone", "Home phone", "Téléphone fixe",
     {"hint": PHONE_HINT, "constraint": PHONE}),
    ("text", "prs_email", "Email", "Adresse e-mail",
     {"constraint": ("regex(., '^[^@ ]+@[^@ ]+\\.[^@ ]+$')", "Enter a valid email address.",
                     "Saisissez une adresse e-mail valide.")}),
    ("text", "prs_mailingstreet", "Street address", "Adresse (rue)"),
    ("text", "prs_mailingcity", "City or town", "Ville ou localité"),
    ("text", "prs_mailingstate", "State / province", "État / province"),
    ("text", "prs_mailingpostalcode", "Postal code", "Code postal"),
    ("select_one country", "prs_mailingcountry", "Country", "Pays",
     {"appearance": "minimal autocomplete"}),
    other_specify("prs_mailingcountry", "Other country", "Autre pays"),
    ("select_one yes_no", "cb_safe_to_contact",
     "Is it safe to contact the person using these details?",
     "Est-il sans danger de contacter la personne avec ces coordonnées ?",
     {"required": True,
      "relevant": "${prs_mobilephone} != '' or ${prs_homephone} != '' or "
                  "${prs_email} != '' or ${prs_mailingstreet} != ''"}),
    ("end_group",),

    # -- Victim profile (HTCDS vic_) ---------------------------------------------------
    ("begin_group", "victim_profile", "Trafficking status", "Statut au regard de la traite",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("note", "note_child",
     "The person is under 18: follow child-safeguarding procedures and make a "
     "best-interests referral.",
     "La personne a moins de 18 ans : appliquez les procédures de protection de l'enfance et "
     "procédez à une orientation fondée sur l'intérêt supérieur de l'enfant.",
     {"relevant": "${cb_age_years} != '' and ${cb_age_years} < 18"}),
    ("select_one trafficking_status", "vic_traffickingstatus", "Trafficking status",
     "Statut au regard de la traite",
     {"required": True,
      "hint": ("Possible: there are indicators of trafficking but it has not been formally "
               "verified. Actual: formally determined.",
               "Potentielle : il existe des indices de traite, sans vérification formelle. "
               "Avérée : statut établi formellement.")}),
    ("select_one decision_making_org", "vic_traffickingstatusdecisionmakingorg",
     "Type of organisation that made this determination",
     "Type d'organisme ayant établi ce statut",
     {"required": True, "relevant": "${vic_traffickingstatus} != ''"}),
    other_specify("vic_traffickingstatusdecisionmakingorg", "Other type of organisation",
                  "Autre type d'organisme"),
    ("integer", "vic_agewhentrafficked", "Age when first trafficked (in years)",
     "Âge lorsque la personne a été victime de traite pour la première fois (en années)",
     {"relevant": VICTIM,
      "constraint": (". >= 0 and . <= 120 and (${cb_age_years} = '' or . <= ${cb_age_years})",
                     "Age must be between 0 and 120 and not greater than the person's current "
                     "age.",
                     "L'âge doit être compris entre 0 et 120 ans et ne pas dépasser l'âge "
                     "actuel de la personne.")}),
    ("select_one relationship_to_trafficker", "vic_relationshiptotrafficker",
     "Relationship to the trafficker", "Lien avec le trafiquant", {"relevant": VICTIM}),
    ("end_group",),

    ("begin_group", "recruitment", "Recruitment", "Recrutement",
     {"appearance": "field-list", "relevant": VICTIM}),
    ("select_multiple method_of_recruitment", "vic_methodofrecruitment",
     "How was the person recruited?", "Comment la personne a-t-elle été recrutée ?",
     {"hint": SELECT_ALL}),
    other_specify("vic_methodofrecruitment", "Other method of recruitment",
                  "Autre mode de recrutement"),
    ("select_multiple platform", "vic_recruitmentwebsitesandapps",
     "Websites and apps used to recruit the person",
     "Sites web et applications utilisés pour recruter la personne",
     {"hint": SELECT_ALL,
      "relevant": "selected(${vic_methodofrecruitment}, 'through_online_social_networks') or "
                  "selected(${vic_methodofrecruitment}, 'through_an_online_advertisement')"}),
    other_specify("vic_recruitmentwebsitesandapps", "Other website or app",
                  "Autre site web ou application"),
    ("text", "vic_locationofrecruitment", "Place of recruitment", "Lieu de recrutement",
     {"hint": ("Name of the place, business or organisation where the recruitment took place.",
               "Nom du lieu, de l'entreprise ou de l'organisation où le recrutement a eu "
               "lieu.")}),
    ("end_group",),

    ("begin_group", "exploitation", "Exploitation", "Exploitation",
     {"appearance": "field-list", "relevant": VICTIM}),
    ("select_multiple type_of_exploitation", "vic_typeofexploitation",
     "Type(s) of exploitation", "Type(s) d'exploitation",
     {"required": True, "hint": SELECT_ALL}),
    other_specify("vic_typeofexploitation", "Other type of exploitation",
                  "Autre type d'exploitation"),
    ("select_one forced_labour_industry", "vic_forcedlabourindustry",
     "Industry of the forced labour", "Secteur d'activité du travail forcé",
     {"appearance": "minimal",
      "relevant": "selected(${vic_typeofexploitation}, 'forced_labour') or "
                  "selected(${vic_typeofexploitation}, 'child_labour')"}),
    ("select_multiple type_of_sex_exploitation", "vic_typeofsexexploitation",
     "Type(s) of sexual exploitation", "Type(s) d'exploitation sexuelle",
     {"hint": SELECT_ALL,
      "relevant": "selected(${vic_typeofexploitation}, 'sexual_exploitation')"}),
    ("select_multiple platform", "vic_exploitationwebsitesandapps",
     "Websites and apps used in the exploitation",
     "Sites web et applications utilisés pour l'exploitation",
     {"hint": SELECT_ALL}),
    other_specify("vic_exploitationwebsitesandapps", "Other website or app",
                  "Autre site web ou application"),
    ("text", "vic_locationofexploitation", "Place of exploitation", "Lieu d'exploitation",
     {"hint": ("Name of the place, business or organisation where the exploitation took "
               "place.",
               "Nom du lieu, de l'entreprise ou de l'organisation où l'exploitation a eu "
               "lieu.")}),
    ("end_group",),

    ("begin_group", "control", "Methods of control", "Moyens de contrôle",
     {"appearance": "field-list", "relevant": VICTIM}),
    ("select_multiple methods_of_control", "vic_methodsofcontrol",
     "Methods used to control the person", "Moyens utilisés pour contrôler la personne",
     {"hint": SELECT_ALL}),
    other_specify("vic_methodsofcontrol", "Other method of control", "Autre moyen de contrôle"),
    ("end_group",),

    # -- Historic trafficking events (HTCDS hte_) --------------------------------------
    ("begin_group", "trafficking_events", "Recruitment, transit and exploitation places",
     "Lieux de recrutement, de transit et d'exploitation", {"relevant": VICTIM}),
    ("note", "note_events",
     "Add one entry for each place: where the person was recruited, each place of transit "
     "and each place of exploitation.",
     "Ajoutez une entrée pour chaque lieu : le lieu de recrutement, chaque lieu de transit et "
     "chaque lieu d'exploitation."),
    ("begin_repeat", "trafficking_event", "Place", "Lieu", {"appearance": "field-list"}),
    ("select_one event_type", "hte_type", "Stage of the trafficking process",
     "Étape du processus de traite", {"required": True}),
    ("date", "hte_date", "Month and year", "Mois et année",
     {"appearance": "month-year",
      "hint": ("Approximate if the exact date is not known.",
               "Date approximative si la date exacte n'est pas connue."),
      "constraint": (". <= today() and (${prs_birthdate} = '' or "
                     "format-date(., '%Y') >= format-date(${prs_birthdate}, '%Y'))",
                     "The date cannot be in the future or before the person's year of birth.",
                     "La date ne peut pas être dans le futur ni antérieure à l'année de "
                     "naissance de la personne.")}),
    ("select_one country", "hte_country", "Country", "Pays",
     {"required": True, "appearance": "minimal autocomplete"}),
    other_specify("hte_country", "Other country", "Autre pays"),
    ("text", "hte_state", "State / province", "État / province"),
    ("text", "hte_city", "City or town", "Ville ou localité"),
    ("text", "hte_street", "Street address", "Adresse (rue)"),
    ("text", "hte_postalcode", "Postal code", "Code postal"),
    ("text", "hte_description", "Description", "Description",
     {"appearance": "multiline",
      "hint": ("What happened here, means of transport, people involved.",
               "Ce qui s'est passé à cet endroit, moyens de transport, personnes "
               "impliquées.")}),
    ("end_repeat",),
    ("end_group",),

    # -- Perpetrators (HTCDS per_) -----------------------------------------------------
    ("begin_group", "perpetrators", "Perpetrators", "Auteurs", {"relevant": VICTIM}),
    ("select_one yes_no", "cb_perpetrators_known",
     "Can the person give information about any perpetrator?",
     "La personne peut-elle donner des informations sur un ou plusieurs auteurs ?",
     {"required": True}),
    ("begin_repeat", "perpetrator", "Perpetrator", "Auteur",
     {"appearance": "field-list", "relevant": "${cb_perpetrators_known} = 'yes'"}),
    ("select_multiple role_in_process", "per_roleinprocess",
     "Role(s) in the trafficking process", "Rôle(s) dans le processus de traite",
     {"required": True, "hint": SELECT_ALL}),
    other_specify("per_roleinprocess", "Other role", "Autre rôle"),
    ("select_one gender", "cb_per_gender", "Perpetrator's gender", "Genre de l'auteur"),
    ("select_multiple citizenship", "cb_per_citizenship", "Perpetrator's citizenship",
     "Nationalité(s) de l'auteur", {"appearance": "minimal", "hint": SELECT_ALL}),
    other_specify("cb_per_citizenship", "Other citizenship", "Autre nationalité"),
    ("text", "per_organisation", "Organisation or network (if any)",
     "Organisation ou réseau (le cas échéant)"),
    ("text", "per_roledetails", "Details of the role", "Précisions sur le rôle",
     {"appearance": "multiline",
      "hint": ("Describe what this perpetrator did and how the person knew them.",
               "Décrivez ce que cet auteur a fait et comment la personne le connaissait.")}),
    ("end_repeat",),
    ("end_group",),

    # -- Case and referrals (HTCDS cas_) -----------------------------------------------
    ("begin_group", "case", "Case", "Dossier",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("select_one case_status", "cas_status", "Case status", "Statut du dossier",
     {"required": True, "default": "active"}),
    ("text", "cas_reasonforcaseclosure", "Reason for case closure",
     "Motif de clôture du dossier",
     {"appearance": "multiline", "required": True,
      "relevant": "${cas_status} = 'closed' or ${cas_status} = 'closed_referred'"}),
    ("end_group",),

    ("begin_group", "incoming_referral", "Incoming referral", "Orientation entrante",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("select_one yes_no", "cb_referred_in",
     "Was this case referred to your organisation by another organisation?",
     "Ce dossier a-t-il été orienté vers votre organisation par une autre organisation ?",
     {"required": True}),
    ("text", "cas_referringorganisation", "Referring organisation",
     "Organisation ayant orienté le dossier",
     {"required": True, "relevant": "${cb_referred_in} = 'yes'"}),
    ("date", "cas_incomingreferraldate", "Date the referral was accepted",
     "Date d'acceptation de l'orientation",
     {"relevant": "${cb_referred_in} = 'yes'", "constraint": NOT_FUTURE}),
    ("text", "cas_referringprimarycaseworker", "Case worker at the referring organisation",
     "Gestionnaire de cas de l'organisation ayant orienté le dossier",
     {"relevant": "${cb_referred_in} = 'yes'"}),
    ("select_one incoming_referral_reason", "cas_reasonforincomingreferral",
     "Reason for the referral", "Motif de l'orientation",
     {"relevant": "${cb_referred_in} = 'yes'"}),
    ("text", "cas_incomingreferraldetails", "Referral details",
     "Précisions sur l'orientation",
     {"appearance": "multiline", "relevant": "${cb_referred_in} = 'yes'",
      "hint": ("Special arrangements and logistics.",
               "Dispositions particulières et logistique.")}),
    ("end_group",),

    ("begin_group", "outgoing_referral", "Outgoing referral", "Orientation sortante",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("note", "note_no_sharing",
     "The person did not agree to share their information: do not refer the case to another "
     "organisation without new consent.",
     "La personne n'a pas accepté le partage de ses informations : n'orientez pas le dossier "
     "vers une autre organisation sans nouveau consentement.",
     {"relevant": "${cb_consent_share} = 'false'"}),
    ("select_one yes_no", "cb_referred_out",
     "Is the case being referred to another organisation?",
     "Le dossier est-il orienté vers une autre organisation ?",
     {"required": True, "relevant": "${cb_consent_share} = 'true'"}),
    ("text", "cas_referredorganisation", "Organisation the case is referred to",
     "Organisation destinataire de l'orientation",
     {"required": True, "relevant": "${cb_referred_out} = 'yes'"}),
    ("text", "cas_referredprimarycaseworker", "Case worker at the receiving organisation",
     "Gestionnaire de cas de l'organisation destinataire",
     {"relevant": "${cb_referred_out} = 'yes'"}),
    ("select_one outgoing_referral_reason", "cas_reasonforoutgoingreferral",
     "Reason for the referral", "Motif de l'orientation",
     {"relevant": "${cb_referred_out} = 'yes'"}),
    ("date", "cas_outgoingreferraldate", "Date of the referral", "Date de l'orientation",
     {"relevant": "${cb_referred_out} = 'yes'", "constraint": NOT_FUTURE}),
    ("text", "cas_outgoingreferraldetails", "Referral details",
     "Précisions sur l'orientation",
     {"appearance": "multiline", "relevant": "${cb_referred_out} = 'yes'",
      "hint": ("Special arrangements and logistics.",
               "Dispositions particulières et logistique.")}),
    ("end_group",),

    # -- Support needs and plans (HTCDS spl_) ------------------------------------------
    ("begin_group", "support", "Support needs and plans",
     "Besoins d'assistance et plans d'accompagnement", {"relevant": CONSENTED}),
    ("select_multiple support_type", "cb_support_needs",
     "Which types of support does the person need?",
     "De quels types d'assistance la personne a-t-elle besoin ?",
     {"hint": ("A support plan is opened for each type selected.",
               "Un plan d'accompagnement est ouvert pour chaque type sélectionné.")}),
    # One support plan (HTCDS spl_ record) per need selected above.
    ("begin_repeat", "support_plan", "Support plan", "Plan d'accompagnement",
     {"appearance": "field-list", "repeat_count": "count-selected(${cb_support_needs})"}),
    ("calculate", "spl_type", "", "",
     {"calculation": "selected-at(${cb_support_needs}, position(..) - 1)"}),
    ("calculate", "cb_spl_type_label", "", "",
     {"calculation": "jr:choice-name(${spl_type}, '${cb_support_needs}')"}),
    ("note", "note_support_plan", "Support plan: ${cb_spl_type_label}",
     "Plan d'accompagnement : ${cb_spl_type_label}"),
    ("text", "spl_objectives", "Objectives", "Objectifs",
     {"appearance": "multiline", "required": True}),
    ("text", "spl_actionplan", "Action plan", "Plan d'action",
     {"appearance": "multiline",
      "hint": ("Actions needed to achieve the objectives.",
               "Actions nécessaires pour atteindre les objectifs.")}),
    ("date", "spl_plannedenddate", "Planned end date", "Date de fin prévue",
     {"constraint": NOT_PAST}),
    ("end_repeat",),
    ("end_group",),

    # -- End ---------------------------------------------------------------------------
    ("begin_group", "closing", "End of interview", "Fin de l'entretien",
     {"appearance": "field-list"}),
    ("note", "note_case_reference",
     "Case reference: ${cas_case_id}. Keep this reference: it is needed for the assistance "
     "and reintegration follow-up forms.",
     "Référence du dossier : ${cas_case_id}. Conservez cette référence : elle est nécessaire "
     "pour les formulaires de suivi de l'assistance et de la réintégration.",
     {"relevant": CONSENTED}),
    ("note", "note_end_refused",
     "Consent was refused: no further information has been recorded. Save and finalise the "
     "form.",
     "Le consentement a été refusé : aucune autre information n'a été enregistrée. "
     "Enregistrez et finalisez le formulaire.",
     {"relevant": REFUSED}),
    ("end_group",),
]

# --------------------------------------------------------------------------------------
# 2. Assistance follow-up
# --------------------------------------------------------------------------------------

ASSISTANCE = follow_up_consent_rows() + [
    ("begin_group", "assistance", "Assistance provided", "Assistance fournie",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("date", "cb_assistance_date", "Date of assistance", "Date de l'assistance",
     {"required": True, "default": "today()", "constraint": NOT_FUTURE}),
    ("select_multiple support_type", "cb_assistance_types", "Type(s) of assistance provided",
     "Type(s) d'assistance fournie", {"required": True, "hint": SELECT_ALL}),
    ("text", "org_name", "Organisation that provided the assistance",
     "Organisation ayant fourni l'assistance", {"required": True}),
    ("select_one org_type", "org_type", "Type of organisation", "Type d'organisation"),
    ("end_group",),

    ("begin_group", "support_plans", "Support plans", "Plans d'accompagnement",
     {"relevant": CONSENTED}),
    ("select_one yes_no", "cb_plan_completed", "Has any support plan been completed?",
     "Un plan d'accompagnement a-t-il été mené à terme ?", {"required": True}),
    ("begin_repeat", "completed_plan", "Completed support plan",
     "Plan d'accompagnement achevé",
     {"appearance": "field-list", "relevant": "${cb_plan_completed} = 'yes'"}),
    ("select_one support_type", "spl_type", "Type of support plan",
     "Type de plan d'accompagnement", {"required": True}),
    ("date", "spl_actualenddate", "Actual end date", "Date de fin effective",
     {"required": True, "constraint": NOT_FUTURE}),
    ("end_repeat",),
    ("end_group",),
] + case_rows()

# --------------------------------------------------------------------------------------
# 3. Return and reintegration follow-up
# --------------------------------------------------------------------------------------

REINTEGRATION = follow_up_consent_rows() + [
    ("begin_group", "return", "Return", "Retour",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("date", "cb_visit_date", "Date of this follow-up", "Date de ce suivi",
     {"required": True, "default": "today()", "constraint": NOT_FUTURE}),
    ("date", "cb_return_date", "Date of return", "Date du retour",
     {"required": True,
      "constraint": (". <= today() and (${cb_visit_date} = '' or . <= ${cb_visit_date})",
                     "The return date cannot be in the future or after the date of this "
                     "follow-up.",
                     "La date du retour ne peut pas être dans le futur ni postérieure à la "
                     "date de ce suivi.")}),
    ("select_one country", "cb_return_country", "Country of return", "Pays de retour",
     {"required": True, "appearance": "minimal autocomplete"}),
    other_specify("cb_return_country", "Other country", "Autre pays"),
    ("end_group",),

    ("begin_group", "reintegration", "Reintegration", "Réintégration",
     {"appearance": "field-list", "relevant": CONSENTED}),
    ("select_one reintegration_status", "cb_reintegration_status", "Reintegration status",
     "État d'avancement de la réintégration", {"required": True}),
    ("select_multiple support_type", "cb_assistance_types",
     "Reintegration assistance received since the last follow-up",
     "Aide à la réintégration reçue depuis le dernier suivi", {"hint": SELECT_ALL}),
    ("end_group",),

    # Risk of re-trafficking: the HTCDS 2.0 Assessment and Planning example questions.
    ("begin_group", "risk", "Risk of re-trafficking", "Risque de nouvelle traite",
     {"relevant": CONSENTED}),
    ("begin_group", "risk_individual", "Individual factors", "Facteurs individuels",
     {"appearance": "field-list"}),
    ("note", "note_risk",
     "For each factor, assess whether it increases the person's risk of being trafficked "
     "again in their current situation.",
     "Pour chaque facteur, évaluez s'il accroît le risque que la personne soit de nouveau "
     "victime de traite dans sa situation actuelle."),
    risk_question("cb_risk_ind_origin",
                  "Is the person's nationality, race or ethnicity a risk factor in this "
                  "context?",
                  "La nationalité, l'origine raciale ou ethnique de la personne constitue-t-elle "
                  "un facteur de risque dans ce contexte ?"),
    risk_question("cb_risk_ind_sexual_orientation",
                  "Is the person's sexual orientation a risk factor in this context?",
                  "L'orientation sexuelle de la personne constitue-t-elle un facteur de risque "
                  "dans ce contexte ?"),
    risk_question("cb_risk_ind_age", "Is the person's age a risk factor in this context?",
                  "L'âge de la personne constitue-t-il un facteur de risque dans ce contexte ?"),
    ("end_group",),
    ("begin_group", "risk_household", "Household factors", "Facteurs liés au ménage",
     {"appearance": "field-list"}),
    risk_question("cb_risk_hh_income",
                  "Is the household's source of income a risk factor in this context?",
                  "La source de revenus du ménage constitue-t-elle un facteur de risque dans ce "
                  "contexte ?"),
    risk_question("cb_risk_hh_violence",
                  "Is violence or abuse in the household a risk factor in this context?",
                  "La violence ou la maltraitance au sein du ménage constitue-t-elle un facteur "
                  "de risque dans ce contexte ?"),
    risk_question("cb_risk_hh_discrimination",
                  "Is preferential treatment or discrimination in the household a risk factor "
                  "in this context?",
                  "Un traitement préférentiel ou discriminatoire au sein du ménage "
                  "constitue-t-il un facteur de risque dans ce contexte ?"),
    ("end_group",),
    ("begin_group", "risk_community", "Community factors", "Facteurs communautaires",
     {"appearance": "field-list"}),
    risk_question("cb_risk_com_law_enforcement",
                  "Is the community's access to appropriate law enforcement a risk factor in "
                  "this context?",
                  "L'accès de la communauté à des services de maintien de l'ordre adaptés "
                  "constitue-t-il un facteur de risque dans ce contexte ?"),
    risk_question("cb_risk_com_governance",
                  "Is the community's ability to implement local governance or collective "
                  "action a risk factor in this context?",
                  "La capacité de la communauté à mettre en œuvre une gouvernance locale ou une "
                  "action collective constitue-t-elle un facteur de risque dans ce contexte ?"),
    risk_question("cb_risk_com_education",
                  "Is the community's access to education services a risk factor in this "
                  "context?",
                  "L'accès de la communauté aux services d'éducation constitue-t-il un facteur "
                  "de risque dans ce contexte ?"),
    ("end_group",),
    ("begin_group", "risk_overall", "Overall assessment", "Évaluation globale",
     {"appearance": "field-list"}),
    ("select_one risk_level", "cb_retrafficking_risk", "Overall risk of re-trafficking",
     "Risque global de nouvelle traite", {"required": True}),
    ("text", "cb_retrafficking_risk_details", "Reasons for this assessment",
     "Justification de cette évaluation",
     {"appearance": "multiline", "required": True,
      "relevant": "${cb_retrafficking_risk} = 'medium' or ${cb_retrafficking_risk} = 'high'"}),
    ("end_group",),
    ("end_group",),
] + case_rows()

# --------------------------------------------------------------------------------------
# From form to case: `save_to` (question -> case-schema field, HTCDS names) and the
# `entities` sheet (one entity list per kind of case record). See server/cases/fields.py.
# --------------------------------------------------------------------------------------

SCREENING_SAVE_TO = {
    "cas_case_id": "cases#cas_Reference",
    "con_consent": "cases#con_Consent",
    "cb_consent_share": "cases#con_Sharing",
    "cb_consent_research": "cases#con_Research",
    "prs_firstname": "cases#prs_FirstName",
    "prs_middlename": "cases#prs_MiddleName",
    "prs_secondname": "cases#prs_SecondName",
    "prs_gender": "cases#prs_Gender",
    "prs_birthdate": "cases#prs_Birthdate",
    "cb_age_estimate": "cases#prs_AgeEstimate",
    "prs_citizenship": "cases#prs_Citizenship",
    "prs_identitynumber": "cases#prs_IdentityNumber",
    "prs_primarylanguage": "cases#prs_PrimaryLanguage",
    "prs_secondarylanguage": "cases#prs_SecondaryLanguage",
    "prs_maritalstatus": "cases#prs_MaritalStatus",
    "prs_numberofchildren": "cases#prs_NumberOfChildren",
    "prs_highestlevelofeducation": "cases#prs_HighestLevelOfEducation",
    "prs_mobilephone": "cases#prs_MobilePhone",
    "prs_homephone": "cases#prs_HomePhone",
    "prs_email": "cases#prs_Email",
    "prs_mailingstreet": "cases#prs_MailingStreet",
    "prs_mailingcity": "cases#prs_MailingCity",
    "prs_mailingstate": "cases#prs_MailingState",
    "prs_mailingpostalcode": "cases#prs_MailingPostalCode",
    "prs_mailingcountry": "cases#prs_MailingCountry",
    "vic_traffickingstatus": "cases#vic_TraffickingStatus",
    "vic_traffickingstatusdecisionmakingorg": "cases#vic_TraffickingStatusDecisionMakingOrg",
    "vic_agewhentrafficked": "cases#vic_AgeWhenTrafficked",
    "vic_relationshiptotrafficker": "cases#vic_RelationshipToTrafficker",
    "vic_methodofrecruitment": "cases#vic_MethodOfRecruitment",
    "vic_recruitmentwebsitesandapps": "cases#vic_RecruitmentWebsitesAndApps",
    "vic_locationofrecruitment": "cases#vic_LocationOfRecruitment",
    "vic_typeofexploitation": "cases#vic_TypeOfExploitation",
    "vic_forcedlabourindustry": "cases#vic_ForcedLabourIndustry",
    "vic_typeofsexexploitation": "cases#vic_TypeOfSexExploitation",
    "vic_exploitationwebsitesandapps": "cases#vic_ExploitationWebsitesAndApps",
    "vic_locationofexploitation": "cases#vic_LocationOfExploitation",
    "vic_methodsofcontrol": "cases#vic_MethodsOfControl",
    "cas_status": "cases#cas_Status",
    "cas_reasonforcaseclosure": "cases#cas_ReasonForCaseClosure",
    "cas_referringorganisation": "cases#cas_ReferringOrganisation",
    "cas_incomingreferraldate": "cases#cas_IncomingReferralDate",
    "cas_referringprimarycaseworker": "cases#cas_ReferringPrimaryCaseWorker",
    "cas_reasonforincomingreferral": "cases#cas_ReasonForIncomingReferral",
    "cas_incomingreferraldetails": "cases#cas_IncomingReferralDetails",
    "cas_referredorganisation": "cases#cas_ReferredOrganisation",
    "cas_referredprimarycaseworker": "cases#cas_ReferredPrimaryCaseWorker",
    "cas_reasonforoutgoingreferral": "cases#cas_ReasonForOutgoingReferral",
    "cas_outgoingreferraldate": "cases#cas_OutgoingReferralDate",
    "cas_outgoingreferraldetails": "cases#cas_OutgoingReferralDetails",
    "hte_type": "movement_events#hte_Type",
    "hte_date": "movement_events#hte_Date",
    "hte_country": "movement_events#hte_Country",
    "hte_state": "movement_events#hte_State",
    "hte_city": "movement_events#hte_City",
    "hte_street": "movement_events#hte_Street",
    "hte_postalcode": "movement_events#hte_PostalCode",
    "hte_description": "movement_events#hte_Description",
    "per_roleinprocess": "perpetrators#per_RoleInProcess",
    "cb_per_gender": "perpetrators#per_Gender",
    "cb_per_citizenship": "perpetrators#per_Citizenship",
    "per_organisation": "perpetrators#per_Organisation",
    "per_roledetails": "perpetrators#per_RoleDetails",
    "spl_type": "support_plans#spl_Type",
    "spl_objectives": "support_plans#spl_Objectives",
    "spl_actionplan": "support_plans#spl_ActionPlan",
    "spl_plannedenddate": "support_plans#spl_PlannedEndDate",
}
# The case list shows only the reference: the least that lets an interviewer pick a case.
SCREENING_ENTITIES = [
    {"list_name": "cases", "label": "concat('CB-', substr(${cas_case_id}, 0, 8))",
     "create_if": CONSENTED},
    {"list_name": "movement_events", "label": "${hte_type}"},
    {"list_name": "perpetrators", "label": "${per_roleinprocess}"},
    {"list_name": "support_plans", "label": "${spl_type}"},
]
FOLLOW_UP_SAVE_TO = {
    "con_consent": "cases#con_Consent",
    "cb_consent_share": "cases#con_Sharing",
    "cas_status": "cases#cas_Status",
    "cas_reasonforcaseclosure": "cases#cas_ReasonForCaseClosure",
    "cb_follow_up_date": "cases#cas_FollowUpDate",
    "cco_casecomment": "cases#cco_CaseComment",
}
ASSISTANCE_SAVE_TO = FOLLOW_UP_SAVE_TO | {
    "cb_assistance_date": "assistance#spl_AssistanceDate",
    "cb_assistance_types": "assistance#spl_AssistanceTypes",
    "org_name": "assistance#org_Name",
    "org_type": "assistance#org_Type",
    "spl_type": "support_plans#spl_Type",
    "spl_actualenddate": "support_plans#spl_ActualEndDate",
}
REINTEGRATION_SAVE_TO = FOLLOW_UP_SAVE_TO | {
    "cb_reintegration_status": "cases#cas_ReintegrationStatus",
    "cb_retrafficking_risk": "cases#cas_RetraffickingRisk",
}
FOLLOW_UP_CASE = {"list_name": "cases", "label": "", "entity_id": "${case_id}"}
ASSISTANCE_ENTITIES = [
    FOLLOW_UP_CASE,
    {"list_name": "assistance", "label": "${org_name}"},
    {"list_name": "support_plans", "label": "${spl_type}"},
]
# Reintegration assistance types stay on the submission: pyxform allows one entity per
# group, and that group also updates the case.
REINTEGRATION_ENTITIES = [FOLLOW_UP_CASE]

FORMS = [
    # (file name, form_id, form_title, instance_name, rows, save_to, entities)
    ("screening.xlsx", "cb_screening", "Victim screening and registration",
     "concat('Screening ', ${today}, ' ', ${cas_case_id})", SCREENING,
     SCREENING_SAVE_TO, SCREENING_ENTITIES),
    ("assistance.xlsx", "cb_assistance", "Assistance follow-up",
     "concat('Assistance ', ${today}, ' ', ${case_id})", ASSISTANCE,
     ASSISTANCE_SAVE_TO, ASSISTANCE_ENTITIES),
    ("reintegration.xlsx", "cb_reintegration", "Return and reintegration follow-up",
     "concat('Reintegration ', ${today}, ' ', ${case_id})", REINTEGRATION,
     REINTEGRATION_SAVE_TO, REINTEGRATION_ENTITIES),
]

# fmt: on

# --------------------------------------------------------------------------------------
# Writing the workbooks
# --------------------------------------------------------------------------------------

SURVEY_COLUMNS = [
    "type",
    "name",
    f"label::{EN}",
    f"label::{FR}",
    f"hint::{EN}",
    f"hint::{FR}",
    "required",
    f"required_message::{EN}",
    f"required_message::{FR}",
    "relevant",
    "constraint",
    f"constraint_message::{EN}",
    f"constraint_message::{FR}",
    "appearance",
    "calculation",
    "default",
    "repeat_count",
    "save_to",
]
ENTITIES_COLUMNS = ["list_name", "label", "create_if", "entity_id"]
CHOICES_COLUMNS = ["list_name", "name", f"label::{EN}", f"label::{FR}"]
SETTINGS_COLUMNS = ["form_title", "form_id", "version", "default_language", "instance_name"]
# Column widths for people editing the .xlsx by hand, by column name without language.
COLUMN_WIDTHS = {
    "type": 34,
    "name": 40,
    "label": 60,
    "hint": 40,
    "relevant": 40,
    "constraint": 40,
    "constraint_message": 30,
    "calculation": 40,
    "list_name": 26,
    "save_to": 40,
    "form_title": 36,
    "instance_name": 60,
}
OPTION_KEYS = {"hint", "required", "relevant", "constraint", "appearance", "calculation"}
OPTION_KEYS |= {"default", "repeat_count"}


def survey_record(row):
    """Turn a (type, name, label_en, label_fr, options) tuple into a column -> value dict."""
    qtype, name, label_en, label_fr, opts = tuple(row) + ("", "", "", {})[len(row) - 1 :]
    unknown = set(opts) - OPTION_KEYS
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {sorted(unknown)}")
    rec = {"type": qtype, "name": name, f"label::{EN}": label_en, f"label::{FR}": label_fr}
    if "hint" in opts:
        rec[f"hint::{EN}"], rec[f"hint::{FR}"] = opts["hint"]
    if opts.get("required"):
        message = REQUIRED_MESSAGE if opts["required"] is True else opts["required"]
        rec["required"] = "yes"
        rec[f"required_message::{EN}"], rec[f"required_message::{FR}"] = message
    if "constraint" in opts:
        rec["constraint"] = opts["constraint"][0]
        rec[f"constraint_message::{EN}"], rec[f"constraint_message::{FR}"] = opts["constraint"][1:]
    for key in ("relevant", "appearance", "calculation", "default", "repeat_count"):
        if key in opts:
            rec[key] = opts[key]
    return rec


def used_choice_lists(records):
    """Choice list names referenced by the survey, in order of first use."""
    names = []
    for rec in records:
        parts = rec["type"].split()
        if parts[0] in ("select_one", "select_multiple") and parts[1] not in names:
            names.append(parts[1])
    return names


def write_sheet(ws, columns, records):
    ws.append(columns)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        width = COLUMN_WIDTHS.get(cell.value.split("::")[0], 16)
        ws.column_dimensions[cell.column_letter].width = width
    for rec in records:
        ws.append([rec.get(col) or None for col in columns])
    ws.freeze_panes = "A2"


def deterministic_xlsx(wb, stamp):
    """Save `wb` as .xlsx bytes that depend only on its content, not on the clock.

    openpyxl stamps the save time into docProps/core.xml and the zip entries; both are
    replaced with `stamp`, so regenerating unchanged forms gives identical files.
    """
    buf = io.BytesIO()
    wb.save(buf)
    wb.properties.modified = stamp
    core_xml = tostring(wb.properties.to_tree())
    src = zipfile.ZipFile(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            data = core_xml if info.filename == "docProps/core.xml" else src.read(info)
            dst.writestr(entry, data)
    return out.getvalue()


def build(filename, form_id, title, instance_name, rows, save_to, entities):
    records = [survey_record(row) for row in rows]
    names = {rec["name"] for rec in records}
    unknown = set(save_to) - names
    if unknown:
        raise ValueError(f"{filename}: save_to for unknown question(s) {sorted(unknown)}")
    for rec in records:
        if rec["name"] in save_to:
            rec["save_to"] = save_to[rec["name"]]
    list_names = used_choice_lists(records)
    missing = [name for name in list_names if name not in CHOICES]
    if missing:
        raise ValueError(f"{filename}: undefined choice list(s) {missing}")
    choice_records = [
        {"list_name": list_name, "name": name, f"label::{EN}": en, f"label::{FR}": fr}
        for list_name in list_names
        for name, en, fr in CHOICES[list_name]
    ]
    settings = {
        "form_title": title,
        "form_id": form_id,
        "version": VERSION,
        "default_language": EN,
        "instance_name": instance_name,
    }

    wb = Workbook()
    stamp = datetime.datetime.strptime(VERSION[:8], "%Y%m%d")
    wb.properties.created = wb.properties.modified = stamp
    wb.properties.creator = "xlsforms/build_forms.py"
    wb.active.title = "survey"
    write_sheet(wb.active, SURVEY_COLUMNS, records)
    write_sheet(wb.create_sheet("choices"), CHOICES_COLUMNS, choice_records)
    write_sheet(wb.create_sheet("settings"), SETTINGS_COLUMNS, [settings])
    write_sheet(wb.create_sheet("entities"), ENTITIES_COLUMNS, entities)

    path = HERE / filename
    path.write_bytes(deterministic_xlsx(wb, stamp))
    return path


def main():
    for form in FORMS:
        print(build(*form))


if __name__ == "__main__":
    main()
