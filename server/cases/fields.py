"""The case schema's field table: each name a designer may `save_to`, and where it lands.

Names are HTCDS 2.0 names (`prs_FirstName`) or CaseBridge extensions that keep the HTCDS
table prefix where HTCDS has no field (`con_Sharing`); extensions are marked so exports and
docs can tell them apart. One dataset (ODK entity list) per record kind: a form's `entities`
sheet names the dataset, its `save_to` column names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a value is checked and stored."""

    TEXT = "text"
    CODE = "code"  # one HTCDS picklist value
    CODES = "codes"  # several HTCDS picklist values
    COUNTRY = "country"  # ISO 3166-1 alpha-3
    COUNTRIES = "countries"
    LANGUAGE = "language"  # ISO 639-2/T
    DATE = "date"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    MISSIONS = "missions"  # mission codes, space separated in the form


MULTI_KINDS = {Kind.CODES, Kind.COUNTRIES, Kind.MISSIONS}


class Record(StrEnum):
    """The dataset names a form's `entities` sheet may use, one per kind of record."""

    CASES = "cases"  # the case, its person, victim profile, first episode and consent
    EPISODES = "episodes"  # further trafficking episodes of the case's person
    MOVEMENT_EVENTS = "movement_events"
    PERPETRATORS = "perpetrators"
    SUPPORT_PLANS = "support_plans"
    ASSISTANCE = "assistance"


@dataclass(frozen=True)
class Field:
    name: str  #: what designers write in `save_to`
    record: Record  #: the dataset it belongs to
    part: str  #: the model it lands on: person, case, victim, episode, consent, or the record
    attribute: str  #: the model attribute
    kind: Kind
    extension: bool = False  #: a CaseBridge field, not in HTCDS 2.0

    @property
    def local_only(self) -> bool:
        """Never sent to another mission, whatever a link's allow-list says (see LOCAL_ONLY)."""
        return self.name in LOCAL_ONLY


#: Fields that never leave this mission: how to reach or find the person (identity number,
#: contact details, exact addresses and coordinates), staff names, and free-text notes that
#: may hold anything. Linked missions get codes, dates and countries; names travel only when
#: a link's allow-list names them (default deny), and these never.
LOCAL_ONLY = frozenset(
    {
        "prs_IdentityNumber",
        "prs_Email",
        "prs_HomePhone",
        "prs_MobilePhone",
        "prs_MailingStreet",
        "prs_MailingPostalCode",
        "cas_ReferringPrimaryCaseWorker",
        "cas_ReferredPrimaryCaseWorker",
        "cas_IncomingReferralDetails",
        "cas_OutgoingReferralDetails",
        "cco_CaseComment",
        "vic_DetailsOfVulnerabilities",
        "hte_Street",
        "hte_PostalCode",
        "hte_Latitude",
        "hte_Longitude",
        "hte_Description",
        "per_RoleDetails",
    }
)


def _fields(record: Record, part: str, spec: str, *, extension: bool = False) -> list[Field]:
    """Fields from lines of `name attribute kind`."""
    result = []
    for line in spec.strip().splitlines():
        name, attribute, kind = line.split()
        result.append(Field(name, record, part, attribute, Kind(kind), extension))
    return result


EPISODE = """
vic_AgeWhenTrafficked age_when_trafficked integer
vic_RelationshipToTrafficker relationship_to_trafficker code
vic_MethodOfRecruitment methods_of_recruitment codes
vic_RecruitmentWebsitesAndApps recruitment_websites_and_apps codes
vic_LocationOfRecruitment location_of_recruitment text
vic_MethodsOfControl methods_of_control codes
vic_TypeOfExploitation types_of_exploitation codes
vic_ForcedLabourIndustry forced_labour_industry code
vic_TypeOfSexExploitation types_of_sex_exploitation codes
vic_LocationOfExploitation location_of_exploitation text
vic_ExploitationWebsitesAndApps exploitation_websites_and_apps codes
"""
EPISODE_EXTENSIONS = """
vic_ExploitationStartDate started_on date
vic_ExploitationEndDate ended_on date
vic_ExploitationDurationMonths duration_months integer
"""

C = Record.CASES
FIELDS: dict[str, Field] = {
    f.name: f
    for f in [
        *_fields(
            C,
            "person",
            """
            prs_FirstName first_name text
            prs_MiddleName middle_name text
            prs_SecondName second_name text
            prs_Birthdate birthdate date
            prs_Gender gender code
            prs_Deceased deceased boolean
            prs_MaritalStatus marital_status code
            prs_NumberOfChildren number_of_children integer
            prs_PrimaryLanguage primary_language language
            prs_SecondaryLanguage secondary_language language
            prs_HighestLevelOfEducation highest_level_of_education code
            prs_Citizenship citizenship countries
            prs_IdentityNumber identity_number text
            prs_Email email text
            prs_HomePhone home_phone text
            prs_MobilePhone mobile_phone text
            prs_MailingStreet mailing_street text
            prs_MailingCity mailing_city text
            prs_MailingState mailing_state text
            prs_MailingPostalCode mailing_postal_code text
            prs_MailingCountry mailing_country country
            """,
        ),
        *_fields(
            C,
            "person",
            """
            prs_AgeEstimate age_estimate integer
            """,
            extension=True,
        ),
        *_fields(
            C,
            "case",
            """
            cas_Status status code
            cas_ReasonForCaseClosure reason_for_case_closure text
            cas_ReferringOrganisation referring_organisation text
            cas_IncomingReferralDate incoming_referral_date date
            cas_ReferringPrimaryCaseWorker referring_primary_case_worker text
            cas_ReasonForIncomingReferral reason_for_incoming_referral code
            cas_IncomingReferralDetails incoming_referral_details text
            cas_ReferredOrganisation referred_organisation text
            cas_ReferredPrimaryCaseWorker referred_primary_case_worker text
            cas_ReasonForOutgoingReferral reason_for_outgoing_referral code
            cas_OutgoingReferralDate outgoing_referral_date date
            cas_OutgoingReferralDetails outgoing_referral_details text
            cco_CaseComment last_comment text
            """,
        ),
        *_fields(
            C,
            "case",
            """
            cas_Reference reference text
            cas_FollowUpDate follow_up_date date
            cas_ReintegrationStatus reintegration_status text
            cas_RetraffickingRisk retrafficking_risk text
            """,
            extension=True,
        ),
        *_fields(
            C,
            "victim",
            """
            vic_AgreementToManagePersonalData agreement_to_manage_personal_data boolean
            vic_TraffickingStatus trafficking_status code
            vic_TraffickingStatusDecisionMakingOrg status_decided_by code
            vic_Vulnerabilities vulnerabilities codes
            vic_DetailsOfVulnerabilities details_of_vulnerabilities text
            """,
        ),
        *_fields(C, "episode", EPISODE),
        *_fields(C, "episode", EPISODE_EXTENSIONS, extension=True),
        *_fields(C, "consent", "con_Consent given boolean"),
        *_fields(
            C,
            "consent",
            """
            con_Sharing sharing boolean
            con_Research research boolean
            con_Purposes purposes codes
            con_RecipientMissions recipient_missions missions
            con_Withdrawn withdrawn boolean
            """,
            extension=True,
        ),
    ]
}

#: Fields of the child records, by dataset. A child dataset lives in a repeat (or once at
#: the top level) and belongs to the case of the same submission.
CHILD_FIELDS: dict[Record, dict[str, Field]] = {
    record: {f.name: f for f in fields}
    for record, fields in {
        Record.EPISODES: [
            *_fields(Record.EPISODES, "episode", EPISODE),
            *_fields(Record.EPISODES, "episode", EPISODE_EXTENSIONS, extension=True),
        ],
        Record.MOVEMENT_EVENTS: _fields(
            Record.MOVEMENT_EVENTS,
            "movement_event",
            """
            hte_Type type code
            hte_Date date date
            hte_Country country country
            hte_State state text
            hte_City city text
            hte_Street street text
            hte_PostalCode postal_code text
            hte_Latitude latitude decimal
            hte_Longitude longitude decimal
            hte_Description description text
            """,
        ),
        Record.PERPETRATORS: [
            *_fields(
                Record.PERPETRATORS,
                "perpetrator",
                """
                per_RoleInProcess roles codes
                per_RoleDetails role_details text
                """,
            ),
            *_fields(
                Record.PERPETRATORS,
                "perpetrator",
                """
                per_Gender gender code
                per_Citizenship citizenship countries
                per_Organisation organisation text
                """,
                extension=True,
            ),
        ],
        Record.SUPPORT_PLANS: _fields(
            Record.SUPPORT_PLANS,
            "support_plan",
            """
            spl_Type type code
            spl_Objectives objectives text
            spl_ActionPlan action_plan text
            spl_PlannedEndDate planned_end_date date
            spl_ActualEndDate actual_end_date date
            """,
        ),
        Record.ASSISTANCE: [
            *_fields(
                Record.ASSISTANCE,
                "assistance",
                """
                org_Name provider_name text
                org_Type provider_type code
                """,
            ),
            *_fields(
                Record.ASSISTANCE,
                "assistance",
                """
                spl_AssistanceDate date date
                spl_AssistanceTypes types codes
                """,
                extension=True,
            ),
        ],
    }.items()
}


def fields_of(record: Record) -> dict[str, Field]:
    return FIELDS if record is Record.CASES else CHILD_FIELDS[record]


#: Which HTCDS picklist a CaseBridge extension takes its codes from.
CODE_SOURCES = {
    "per_Gender": "prs_Gender",
    "spl_AssistanceTypes": "spl_Type",
}

#: Code lists of CaseBridge extensions that HTCDS has no list for.
EXTENSION_CODES = {
    "con_Purposes": ("CaseManagement", "Sharing", "Research"),
}
