from kinetic_rules.cli.app import run

run()
