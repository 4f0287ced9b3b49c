"""(being written)"""

from flask import Blueprint

bp = Blueprint("relations", __name__)
