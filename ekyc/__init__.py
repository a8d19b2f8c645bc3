"""eKYC onboarding: documents, cases, the decision pipeline, citizen views."""
