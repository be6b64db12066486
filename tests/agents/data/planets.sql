-- The eight planets (NASA planetary fact sheet) and the first ten chemical elements (IUPAC).
CREATE TABLE planets (
    name TEXT PRIMARY KEY,
    diameter_km INTEGER,        -- equatorial diameter
    mass_1e24_kg REAL,          -- mass in 10^24 kg
    moons INTEGER,              -- confirmed moons
    distance_million_km REAL,   -- mean distance from the Sun
    orbital_period_days REAL
);
INSERT INTO planets VALUES
    ('Mercury', 4879, 0.330, 0, 57.9, 88.0),
    ('Venus', 12104, 4.87, 0, 108.2, 224.7),
    ('Earth', 12756, 5.97, 1, 149.6, 365.2),
    ('Mars', 6792, 0.642, 2, 228.0, 687.0),
    ('Jupiter', 142984, 1898, 95, 778.5, 4331),
    ('Saturn', 120536, 568, 146, 1432.0, 10747),
    ('Uranus', 51118, 86.8, 28, 2867.0, 30589),
    ('Neptune', 49528, 102, 16, 4515.0, 59800);
CREATE TABLE elements (
    number INTEGER PRIMARY KEY,
    symbol TEXT,
    name TEXT,
    atomic_mass REAL
);
INSERT INTO elements VALUES
    (1, 'H', 'Hydrogen', 1.008), (2, 'He', 'Helium', 4.0026), (3, 'Li', 'Lithium', 6.94),
    (4, 'Be', 'Beryllium', 9.0122), (5, 'B', 'Boron', 10.81), (6, 'C', 'Carbon', 12.011),
    (7, 'N', 'Nitrogen', 14.007), (8, 'O', 'Oxygen', 15.999), (9, 'F', 'Fluorine', 18.998),
    (10, 'Ne', 'Neon', 20.180);
