"""The audit trail: who saw or changed what, and when.

People in these records are at risk, so every view of a case, export, login and change is
recorded by `record` in the same transaction as the action itself. An event names people
and things by id only: never a name, a typed login, a password, or a value from a case.
"""

from server.audit.operations import record

__all__ = ["record"]
