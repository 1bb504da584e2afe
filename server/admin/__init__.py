"""The admin console's domain: queue status and the actions on failed submissions.

The pages that show them live in server/pages; this package has no HTTP in it.
"""
