"""Labeling functions: keyword and regex (run as DuckDB SQL) and Python (Snorkel) LFs."""

from thresher.labeling.lf.base import ABSTAIN, LabelingFunction, Row
from thresher.labeling.lf.keyword import KeywordLF
from thresher.labeling.lf.lookup import LookupLF, read_terms_file
from thresher.labeling.lf.python import PythonLF, load_python_lf, load_python_object
from thresher.labeling.lf.regex import RegexLF
from thresher.labeling.lf.rules import load_rule_file
from thresher.labeling.lf.sql import SqlLF

__all__ = ["ABSTAIN", "LabelingFunction", "Row", "KeywordLF", "LookupLF", "SqlLF", "read_terms_file", "RegexLF", "PythonLF", "load_python_lf", "load_python_object", "load_rule_file"]
