"""The chosen subject (--subject) against every check: one test per component, check and option."""


def test_conformance(nlpspec_case, nlpspec_verdict):
    nlpspec_verdict(*nlpspec_case)
