"""(being written)"""

from flask import Blueprint

bp = Blueprint("projects", __name__)
