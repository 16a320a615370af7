"""echoic.train"""
