"""The tables behind bench/caseload.py: who the 2008 caseload's people were, and where.

Weights are assumptions modelled loosely on IOM's 2008 counter-trafficking caseload and
the CTDC's published global dataset (see bench/CASES.md), not figures copied from them.
Every code is a choice name of the shipped forms (xlsforms/build_forms.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    code: str  #: ISO 3166-1 alpha-3, a choice name of the `country`/`citizenship` lists
    weight: float  #: share of the caseload's citizenships
    dial: str  #: E.164 country code, for prs_mobilephone
    languages: tuple[str, ...]  #: ISO 639-2/T, the first the most common
    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]
    cities: tuple[str, ...]
    #: Country of exploitation -> weight; the country itself means domestic trafficking.
    destinations: dict[str, float]
    #: Countries crossed on the way, for the transit movement event.
    transit: tuple[str, ...] = ()


# fmt: off
COUNTRIES: tuple[Country, ...] = (
    Country("UKR", 12, "380", ("ukr", "rus"),
            ("Olena", "Natalia", "Iryna", "Oksana", "Олена", "Tetiana"),
            ("Andrii", "Serhii", "Mykola", "Vasyl"),
            ("Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Kravchenko", "Мельник"),
            ("Kyiv", "Odesa", "Kharkiv", "Lviv", "Vinnytsia"),
            {"RUS": 45, "POL": 15, "TUR": 10, "UKR": 15, "CZE": 5, "ARE": 5, "ISR": 5},
            ("POL", "HUN", "ROU")),
    Country("MDA", 8, "373", ("ron", "rus"),
            ("Ana", "Maria", "Elena", "Tatiana", "Olga", "Cristina"),
            ("Ion", "Vasile", "Sergiu", "Andrei"),
            ("Rusu", "Ceban", "Ciobanu", "Lungu", "Munteanu", "Cojocaru"),
            ("Chisinau", "Balti", "Cahul", "Orhei"),
            {"RUS": 45, "TUR": 20, "ARE": 10, "MDA": 10, "UKR": 5, "ITA": 5},
            ("UKR", "ROU")),
    Country("KHM", 9, "855", ("khm",),
            ("Sokha", "Srey Mom", "Channary", "Sophea", "Bopha", "Kunthea"),
            ("Dara", "Vannak", "Sokun", "Rithy"),
            ("Chan", "Sok", "Chea", "Kim", "Heng", "Sam"),
            ("Phnom Penh", "Battambang", "Poipet", "Siem Reap", "Koh Kong"),
            {"THA": 50, "MYS": 15, "KHM": 25, "VNM": 5, "CHN": 5}, ("THA",)),
    Country("MMR", 9, "95", ("mya", "kar", "shn"),
            ("Aye Aye", "Thandar", "Khin Khin", "Nang Seng", "Mya Mya", "Su Su"),
            ("Aung Ko", "Min Min", "Zaw Win", "Kyaw Kyaw"),
            ("Win", "Oo", "Htun", "Naing", "Thein", "Maung"),
            ("Yangon", "Mawlamyine", "Myawaddy", "Tachileik", "Lashio"),
            {"THA": 55, "MYS": 15, "CHN": 15, "MMR": 15}, ("THA",)),
    Country("LAO", 8, "856", ("lao",),
            ("Noy", "Khamphone", "Souksavanh", "Manivanh", "Phonesavanh", "Latsamy"),
            ("Bounmy", "Somphone", "Khamla", "Vilay"),
            ("Phommachanh", "Sisouphanh", "Vongsa", "Keomany", "Inthavong", "Souvannavong"),
            ("Vientiane", "Savannakhet", "Pakse", "Luang Prabang"),
            {"THA": 80, "LAO": 15, "CHN": 5}),
    Country("VNM", 7, "84", ("vie",),
            ("Lan", "Hoa", "Mai", "Ngọc", "Thu", "Hương"),
            ("Minh", "Tuấn", "Hùng", "Nam"),
            ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ"),
            ("Lào Cai", "Hà Giang", "An Giang", "Hanoi", "Nghệ An"),
            {"CHN": 40, "KHM": 20, "MYS": 15, "VNM": 20, "RUS": 5}, ("LAO", "KHM")),
    Country("IDN", 10, "62", ("ind",),
            ("Siti", "Dewi", "Sri", "Nur", "Ayu", "Rina"),
            ("Agus", "Budi", "Joko", "Rudi"),
            ("Wahyuni", "Lestari", "Susanti", "Rahayu", "Hidayat", "Setiawan"),
            ("Indramayu", "Cirebon", "Surabaya", "Batam", "Kupang"),
            {"MYS": 45, "SAU": 20, "IDN": 20, "SGP": 10, "JPN": 5}, ("SGP",)),
    Country("PHL", 6, "63", ("fil", "tgl", "eng"),
            ("Maria", "Rosalie", "Jennifer", "Marites", "Lorna", "Joy"),
            ("Jose", "Ramon", "Rodel", "Mark"),
            ("Santos", "Reyes", "Cruz", "Bautista", "Garcia", "Mendoza"),
            ("Manila", "Cebu", "Davao", "Zamboanga"),
            {"MYS": 25, "SAU": 20, "ARE": 15, "PHL": 25, "JPN": 10, "HKG": 5}),
    Country("THA", 5, "66", ("tha",),
            ("Malee", "Siriporn", "Nittaya", "Kanya", "Pensri", "Ratana"),
            ("Somchai", "Somsak", "Prasert", "Anan"),
            ("Saetang", "Srisuk", "Chaiyaporn", "Wongsa", "Boonmee", "Thongdee"),
            ("Chiang Rai", "Udon Thani", "Bangkok", "Mae Sai"),
            {"THA": 40, "MYS": 20, "JPN": 15, "BHR": 10, "DEU": 10, "ZAF": 5}),
    Country("NGA", 6, "234", ("eng", "yor", "ibo", "hau"),
            ("Blessing", "Joy", "Faith", "Precious", "Gift", "Osasere"),
            ("Emeka", "Tunde", "Musa", "Osaro"),
            ("Okafor", "Osagie", "Adeyemi", "Eze", "Ibrahim", "Igbinedion"),
            ("Benin City", "Lagos", "Kano", "Enugu"),
            {"NGA": 25, "ITA": 20, "ESP": 10, "GHA": 10, "MLI": 10, "LBY": 10, "FRA": 5,
             "BEN": 10}, ("NER", "LBY", "MAR")),
    Country("BLR", 3, "375", ("rus",),
            ("Volha", "Natallia", "Iryna", "Tatsiana", "Alena", "Hanna"),
            ("Aliaksandr", "Siarhei", "Dzmitry", "Andrei"),
            ("Ivanova", "Kavaliova", "Novik", "Karpovich", "Zhuk", "Lis"),
            ("Minsk", "Gomel", "Brest", "Grodno"),
            {"RUS": 60, "POL": 20, "DEU": 10, "BLR": 10}, ("POL",)),
    Country("NPL", 3, "977", ("nep",),
            ("Sita", "Gita", "Maya", "Sunita", "Laxmi", "Sarita"),
            ("Ram", "Bikash", "Suman", "Hari"),
            ("Tamang", "Gurung", "Shrestha", "Thapa", "Rai", "Magar"),
            ("Sindhupalchok", "Makwanpur", "Kathmandu", "Nuwakot"),
            {"IND": 60, "NPL": 20, "MYS": 10, "SAU": 10}),
    Country("BGD", 3, "880", ("ben",),
            ("Fatema", "Nasrin", "Shirin", "Rokeya", "Moriom", "Rina"),
            ("Rahim", "Karim", "Sohel", "Jamal"),
            ("Akter", "Begum", "Khatun", "Hossain", "Islam", "Rahman"),
            ("Jessore", "Satkhira", "Dhaka", "Cox's Bazar"),
            {"IND": 30, "MYS": 25, "SAU": 20, "BGD": 15, "ARE": 10}, ("IND",)),
    Country("HTI", 2, "509", ("hat", "fra"),
            ("Marie", "Nadège", "Roseline", "Fabienne", "Guerline", "Myrlande"),
            ("Jean", "Wilner", "Pierre", "Jacky"),
            ("Joseph", "Pierre", "Louis", "Jean-Baptiste", "Charles", "Desir"),
            ("Port-au-Prince", "Ouanaminthe", "Cap-Haïtien"),
            {"DOM": 70, "HTI": 30}),
    Country("ROU", 3, "40", ("ron",),
            ("Ioana", "Elena", "Mihaela", "Alina", "Florentina", "Andreea"),
            ("Ionut", "Marian", "Florin", "Gabriel"),
            ("Popescu", "Ionescu", "Stan", "Dumitru", "Radu", "Stoica"),
            ("Bucharest", "Iasi", "Craiova", "Constanta"),
            {"ITA": 30, "ESP": 25, "DEU": 15, "ROU": 20, "GBR": 10}, ("HUN",)),
    Country("KAZ", 2, "7", ("kaz", "rus"),
            ("Aigerim", "Dana", "Gulnara", "Saule", "Aizhan", "Madina"),
            ("Nurlan", "Yerlan", "Aidos", "Arman"),
            ("Nurpeisova", "Bekova", "Ospanova", "Akhmetova", "Iskakova", "Seitova"),
            ("Almaty", "Shymkent", "Astana"),
            {"KAZ": 40, "RUS": 30, "ARE": 15, "TUR": 15}),
)
# fmt: on

#: UTC offsets for the interview timestamps (start/end), by where the person comes from.
UTC_OFFSETS = {"UKR": "+02:00", "MDA": "+02:00", "KHM": "+07:00", "MMR": "+06:30",
               "LAO": "+07:00", "VNM": "+07:00", "IDN": "+07:00", "PHL": "+08:00",
               "THA": "+07:00", "NGA": "+01:00", "BLR": "+02:00", "NPL": "+05:45",
               "BGD": "+06:00", "HTI": "-05:00", "ROU": "+02:00", "KAZ": "+06:00"}  # fmt: skip

#: Share of citizenships outside COUNTRIES, spread over the forms' whole country list.
LONG_TAIL_SHARE = 0.05
LONG_TAIL = (
    "AFG", "ALB", "ARM", "AZE", "BOL", "BFA", "CMR", "CHN", "COL", "COD", "ETH", "GEO", "GHA",
    "GTM", "HND", "IND", "KEN", "KGZ", "MDG", "MLI", "MNG", "MAR", "MOZ", "PAK", "PRY", "PER",
    "SEN", "SLE", "LKA", "TJK", "TGO", "UGA", "UZB", "ZWE",
)  # fmt: skip
GENERIC_FEMALE = ("Maria", "Amina", "Fatima", "Grace", "Leila", "Rosa")
GENERIC_MALE = ("Ali", "John", "Moussa", "Carlos")
GENERIC_FAMILY = ("Diallo", "Haidari", "Mensah", "Lopez", "Karimov", "Kamara")
GENERIC_CITIES = ("capital", "border town", "district centre")

#: (minimum age, maximum age, weight): age at the interview.
AGE_BANDS = ((8, 11, 2), (12, 14, 5), (15, 17, 11), (18, 24, 34), (25, 34, 30), (35, 49, 15),
             (50, 65, 3))  # fmt: skip

#: Exploitation by gender: (choice names, weight); "other" types for the rest.
EXPLOITATION = {
    "feminine": ((("sexual_exploitation",), 52), (("forced_labour",), 36),
                 (("forced_labour", "sexual_exploitation"), 6), (None, 6)),
    "masculine": ((("forced_labour",), 86), (("sexual_exploitation",), 4),
                  (("forced_labour", "sexual_exploitation"), 2), (None, 8)),
}  # fmt: skip
OTHER_EXPLOITATION = {"forced_marriage": 30, "forced_begging": 25, "servitude": 25,
                      "child_labour": 15, "organ_removal": 2, "other": 3}  # fmt: skip
INDUSTRY = {
    "feminine": {"t_activities_of_households_as_employers": 40, "c_manufacturing": 20,
                 "i_accommodation_and_food_service_activities": 15,
                 "a_agriculture_forestry_and_fishing": 10,
                 "g_wholesale_and_retail_trade_repair_of_motor_vehicles": 5,
                 "s_other_service_activities": 10},
    "masculine": {"a_agriculture_forestry_and_fishing": 35, "f_construction": 25,
                  "c_manufacturing": 20, "b_mining_and_quarrying": 8,
                  "t_activities_of_households_as_employers": 4,
                  "s_other_service_activities": 8},
}  # fmt: skip
SEX_EXPLOITATION = {"prostitution": 85, "private_sexual_services": 8, "pornography": 5,
                    "remote_interactive_services": 2}  # fmt: skip
RECRUITMENT = {"through_friends_or_social_events": 35, "through_family_or_family_events": 20,
               "at_a_place_of_business": 10, "at_work": 10, "through_a_newspaper_advert": 8,
               "through_online_social_networks": 5, "through_an_online_advertisement": 4,
               "at_an_educational_institution": 3, "through_a_television_advert": 2,
               "other": 3}  # fmt: skip
PLATFORMS = {"facebook": 30, "viber": 15, "whatsapp": 10, "wechat": 10, "line": 10,
             "facebook_messenger": 10, "qq": 5, "instagram": 5, "other": 5}  # fmt: skip
CONTROL = {"false_promises": 30, "withholds_documents": 25, "takes_earnings": 20,
           "excessive_working_hours": 20, "debt_bondage": 18, "physical_threats": 15,
           "psychological_abuse": 15, "physical_abuse": 10, "restricts_financial_access": 8,
           "withholds_necessities": 6, "threatens_children_family": 6, "sexual_abuse": 6,
           "threats_law_enforcement": 5, "restricts_medical_care": 3,
           "psychoactive_substance": 2, "other": 2}  # fmt: skip
STATUS = {"actual_victim_of_trafficking": 62, "possible_victim_of_trafficking": 33,
          "not_a_victim_of_trafficking": 5}  # fmt: skip
DECIDED_BY = {"police": 35, "ngo": 30, "non_police_governmental_organization": 20,
              "court_or_prosecution": 10, "other": 5}  # fmt: skip
RELATIONSHIP = {"acquainted": 45, "unaquainted": 40, "familial": 15}
ROLES = {"recruiter_or_intermediary": 35, "exploiter": 25, "transporter": 10,
         "controlled_individual": 8, "harboured_individual": 5, "sold_individual": 4,
         "bought_individual": 3, "broker_travel_agent": 4, "smuggler": 3, "abuser": 2,
         "other": 1}  # fmt: skip
MARITAL = {"single": 55, "married": 25, "divorced": 8, "separated": 7, "widowed": 5}
EDUCATION = {"primary_education": 30, "lower_secondary_education": 35,
             "upper_secondary_education": 20, "early_childhood_education": 5,
             "post_secondary_non_tertiary_education": 5,
             "bachelors_or_equivalent_level": 5}  # fmt: skip
CASE_STATUS = {"active": 85, "follow_up": 10, "closed": 3, "closed_referred": 2}
FOLLOW_UP_STATUS = {"active": 45, "follow_up": 35, "closed": 14, "closed_referred": 6}
SUPPORT = {"health": 25, "social_care": 20, "financial": 12, "legal": 10, "livelihood": 10,
           "education": 8, "sexual_exploitation_rehabilitation": 8,
           "labour_exploitation_rehabilitation": 5, "rights_based_training": 2}  # fmt: skip
#: jr:choice-name() of the support types: the English labels the form shows.
SUPPORT_LABELS = {
    "education": "Education", "financial": "Financial", "health": "Health",
    "labour_exploitation_rehabilitation": "Labour exploitation rehabilitation",
    "legal": "Legal", "livelihood": "Livelihood", "rights_based_training": "Rights-based training",
    "sexual_exploitation_rehabilitation": "Sexual exploitation rehabilitation",
    "social_care": "Social care",
}  # fmt: skip
ORG_TYPES = {"ngo": 45, "health_service_organisation": 20, "local_government_organisation": 15,
             "central_government_organisation": 10, "legal_service": 5,
             "school_or_college": 5}  # fmt: skip
ORGANISATIONS = ("IOM shelter", "Women's crisis centre", "Children's protection NGO",
                 "Provincial social welfare office", "Legal aid clinic", "District hospital",
                 "Anti-trafficking police unit", "Labour inspectorate")  # fmt: skip
REINTEGRATION = {"in_progress": 45, "not_started": 15, "completed": 25, "interrupted": 10,
                 "declined": 5}  # fmt: skip
RISK = {"low": 55, "medium": 35, "high": 10}
OBJECTIVES = ("Medical check-up and treatment", "Safe accommodation for three months",
              "Psychosocial counselling", "Vocational training in tailoring",
              "Family tracing and assessment", "Legal counselling for the court case",
              "Return travel documents", "Small business grant")  # fmt: skip
DESCRIPTIONS = ("Travelled by bus with the recruiter", "Crossed the border on foot at night",
                "Kept in a house near the factory", "Handed over to a second broker",
                "Worked on a fishing boat for months", "Passport taken on arrival", "")  # fmt: skip
