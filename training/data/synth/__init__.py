"""Procedural scenes (ray cast in numpy) written in the real datasets' formats."""

# What a seed renders, as a number: bump it with any change that alters the images,
# depth or labels a seed gives (a scene, a material, the renderer). Trees record it in
# synth_info.json, and ``synth --resume`` refuses to extend a tree of another version
# (it would mix two looks in one tree). Trees from before it was recorded have none.
# 2: cars have a painted roof over darker windows; 3: houses under gable roofs behind
# front gardens (suburbs, the green edge of town), gable roofs on some city blocks, cars'
# rounded glass cabins replaced by raked windscreens and rear windows; 4: narrow residential
# streets (one lane between parked cars), streets ending at buildings across them, cars'
# wheels with rims in dark arches and B pillars; 5: cars' bodies with rounded shoulders,
# side mirrors, door shut lines and handles, licence plates, paints drawn by how common
# they are; outdoors, paint and glass reflect the street and the sun's glint, more at
# grazing angles (Fresnel); 6: trees' shadows dappled with sun flecks, one sidewalk
# material (street ends drew their own), roof colours jittered as other colours are; 7:
# avenues (a third of the streets: rows of old trees along both kerbs, crowns of 3.5-7 m
# leaning over the road), every crown in two tones (shade and sunlit clusters); 8: a
# fourth style of street, a small town's (rows of two- and three-floor houses under gable
# roofs, most on the sidewalk's edge), and pale, smooth plaster on some facades of every
# style (most of the town's); 9: windows framed (white or dark wood), with a mullion and a
# transom, a sill, the reveal's shade under the lintel, and glass that mirrors the sky as
# much as it shows the dark room.
SCENES_VERSION = 9
