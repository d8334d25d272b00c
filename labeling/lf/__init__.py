"""Labeling functions: keyword and regex (run as DuckDB SQL) and Python (Snorkel) LFs."""

from labeling.lf.base import ABSTAIN, LabelingFunction, Row
from labeling.lf.keyword import KeywordLF
from labeling.lf.python import PythonLF, load_python_lf
from labeling.lf.regex import RegexLF
from labeling.lf.rules import load_rule_file

__all__ = ["ABSTAIN", "LabelingFunction", "Row", "KeywordLF", "RegexLF", "PythonLF", "load_python_lf", "load_rule_file"]
