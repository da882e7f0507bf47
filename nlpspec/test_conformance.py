"""The chosen subject (--subject) against every check: one test per component, check and option
set, its id carrying the E-ids it bears on (`pytest --pyargs nlpspec -k lstm.forget`)."""


def test_conformance(nlpspec_case, nlpspec_verdict):
    nlpspec_verdict(nlpspec_case)
