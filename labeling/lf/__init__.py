"""Labeling functions: keyword and regex (run as DuckDB SQL) and Python (Snorkel) LFs."""

from labeling.lf.base import ABSTAIN, LabelingFunction, Row
from labeling.lf.keyword import KeywordLF
from labeling.lf.lookup import LookupLF, read_terms_file
from labeling.lf.python import PythonLF, load_python_lf, load_python_object
from labeling.lf.regex import RegexLF
from labeling.lf.rules import load_rule_file
from labeling.lf.sql import SqlLF

__all__ = ["ABSTAIN", "LabelingFunction", "Row", "KeywordLF", "LookupLF", "SqlLF", "read_terms_file", "RegexLF", "PythonLF", "load_python_lf", "load_python_object", "load_rule_file"]
