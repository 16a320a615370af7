"""echoic.objectives"""
