"""echoic.tasks"""
