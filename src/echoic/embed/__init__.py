"""echoic.embed"""
