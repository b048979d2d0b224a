"""`python -m publisher.cli`"""

from publisher.cli import main

main()
