"""echoic.zoo"""
