# ruff: noqa: C901, PLR0911, PLR0912, E501
"""Write the frozen report test set ``cmrclip/text/testdata/reports_frozen.jsonl`` (issue 16).

Usage: .venv/bin/python benchmarks/make_reports_frozen.py

Run once, before any change to the labeller or the de-identifier; the output file is committed and frozen (this
script stays only to show how it was made; re-running it with the same seed writes the same file). Reports are
composed from clinical scenarios, free-text pieces in thirteen house styles, LVEF statements and distractors (RV EF,
prior studies, echo/nuclear EF, numbers in words, ranges, fractions), and identifiers of every HIPAA Safe Harbor kind
that can occur in a report. Every line holds the gold labels, the current LVEF, the other measurements stated, the
planted identifiers (kind + exact text) and the measurement strings that de-identification must keep.
"""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "cmrclip" / "text" / "testdata" / "reports_frozen.jsonl"
SEED = 1606

FIRST = [
    "Margaret",
    "Dmitri",
    "Aoife",
    "Kwame",
    "Ingrid",
    "Tomás",
    "Zoë",
    "Haruto",
    "Leilani",
    "Siddharth",
    "Beatriz",
    "Oisín",
    "Chidi",
    "Małgorzata",
    "Henrik",
    "Noor",
    "Colm",
    "Esperanza",
    "Thandiwe",
    "Jürgen",
    "Wiremu",
    "Rosalind",
    "Ngozi",
    "Padraig",
    "Søren",
    "Bronwyn",
    "Ahmad",
    "Consuelo",
    "Teodor",
    "Mirela",
]
LAST = [
    "Featherstonehaugh",
    "Okonkwo-Bell",
    "Ní Bhriain",
    "Vasquez-Ortiz",
    "Lindqvist",
    "Abernathy",
    "Nguyễn",
    "Kowalczyk",
    "McGillicuddy",
    "Van der Berg",
    "Pemberton",
    "Oyelaran",
    "Ruiz",
    "Haddad",
    "Østergaard",
    "Thistlethwaite",
    "Mbeki",
    "Castellanos",
    "Dumont",
    "Whitcombe",
    "Iyer",
    "O'Halloran",
    "Brandt",
    "Papadakis",
    "Tuilagi",
    "Ferreira",
    "Gallagher",
    "Achterberg",
    "Sørensen",
    "Delacroix",
]
DOCS = [
    ("Helena", "Marchetti"),
    ("Rupert", "Ashdown"),
    ("Yusuf", "Demir"),
    ("Carys", "Llewellyn"),
    ("Benedikt", "Kraus"),
    ("Anjali", "Venkataraman"),
    ("Declan", "Moriarty"),
    ("Fiona", "Strachan"),
    ("Matías", "Echeverría"),
    ("Priscilla", "Ogunleye"),
    ("Lachlan", "Fairbairn"),
    ("Élodie", "Gaudreau"),
]
PLACES = [
    "Kestrel Vale",
    "Wexcombe",
    "Harrowgate",
    "Bramblewood",
    "Oakhurst Ridge",
    "Thornbury Cross",
    "Marrickdale",
    "Elsinore Park",
    "Ostmark",
    "Caldermoor",
    "Redgum Flats",
    "Ballymorran",
    "Silverbrook",
    "Aldermere",
    "Quenby",
    "Westhaven",
    "Grantley",
    "Northcliffe",
    "Vossberg",
    "Lindenhoek",
]
INST_FORMS = [
    "{p} General Hospital",
    "{p} Cardiology",
    "{p} University",
    "University Hospital {p}",
    "St {s}'s, {p}",
    "{p} Heart Centre",
    "{p} Private",
    "{p} Health",
    "{p} Imaging",
    "Klinikum {p}",
    "{p} District Health Board",
    "{p} Regional",
]
SAINTS = ["Wilfrid", "Brigid", "Aidan", "Ursula", "Columba", "Swithun"]
STREETS = [
    ("27 Kingsley Gardens", "Leeds LS6 2QR"),
    ("14 Banksia Crescent", "Parramatta NSW 2150"),
    ("Hauptstraße 112", "10115 Berlin"),
    ("4410 Ridgeview Terrace, Apt 6B", "Tucson, AZ 85719"),
    ("Flat 3, 9 Cromwell Mews", "Bristol BS8 1TH"),
    ("88 Wattle Grove", "Fremantle WA 6160"),
    ("Keizersgracht 421", "1016 GC Amsterdam"),
    ("1907 Old Mill Pike", "Frederick, MD 21702"),
    ("2/15 Jacaranda Close", "Toowong QLD 4066"),
    ("31 Rue des Lilas", "69003 Lyon"),
    ("Unit 12, 300 Harbourside Way", "Glasgow G3 8AZ"),
    ("77 Cedar Hollow Road", "Burlington, VT 05401"),
]
PHONES = [
    "+44 (0)113 496 0721",
    "0113 496 0721",
    "(02) 9876 5432",
    "+61 2 9876 5432",
    "+49 30 5557 1234",
    "(520) 555-0187",
    "520-555-0187",
    "+1 520 555 0187",
    "07700 900461",
    "0412 345 678",
    "+31 20 555 0199",
    "+353 1 555 0173",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WORDS = {
    30: "thirty",
    35: "thirty-five",
    40: "forty",
    42: "forty-two",
    45: "forty-five",
    50: "fifty",
    55: "fifty-five",
    60: "sixty",
    25: "twenty-five",
    38: "thirty-eight",
    65: "sixty-five",
}


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


class Case:
    """One report being written: its text parts, gold labels and the identifiers planted in it."""

    def __init__(self, rng: random.Random, style: str) -> None:
        self.rng, self.style = rng, style
        self.labels: dict[str, str] = {}
        self.ids: list[dict[str, str]] = []
        self.keep: list[str] = []
        self.measures: dict[str, float] = {}
        self.lvef: float | None = None

    def pick(self, seq: list) -> Any:
        return self.rng.choice(seq)

    def ident(self, kind: str, text: str) -> str:
        self.ids.append({"kind": kind, "text": text})
        return text

    def m(self, text: str) -> str:
        self.keep.append(text)
        return text

    def label(self, status: str, *keys: str) -> None:
        for key in keys:
            self.labels[key] = status

    # --- identifiers ---
    def date(self, partial: bool = False, birth: bool = False) -> str:
        d, mo = self.rng.randint(1, 28), self.rng.randint(1, 12)
        y = self.rng.randint(1924, 1995) if birth else self.rng.randint(2015, 2024)
        forms = [
            f"{d:02d}/{mo:02d}/{y}",
            f"{mo}/{d}/{y}",
            f"{y}-{mo:02d}-{d:02d}",
            f"{d}.{mo}.{y}",
            f"{d} {MONTHS[mo - 1]} {y}",
            f"{MONTHS[mo - 1]} {d}, {y}",
            f"{d}-{MONTHS[mo - 1][:3]}-{y}",
            f"the {ordinal(d)} of {MONTHS[mo - 1]} {y}",
            f"{d:02d}/{mo:02d}/{y % 100:02d}",
        ]
        partials = [
            f"{MONTHS[mo - 1]} {y}",
            f"{mo:02d}/{y}",
            f"the {ordinal(d)} of {MONTHS[mo - 1]}",
            f"{MONTHS[mo - 1][:3]} {y}",
            f"{ordinal(d)} {MONTHS[mo - 1]}",
            f"{MONTHS[mo - 1]} {ordinal(d)}",
        ]
        return self.ident("date", self.pick(partials if partial else forms))

    def patient(self) -> tuple[str, str]:
        return self.pick(FIRST), self.pick(LAST)

    def name_forms(self, first: str, last: str) -> str:
        forms = [
            f"{first} {last}",
            f"{last}, {first}",
            f"{last.upper()}, {first.upper()}",
            f"{last.upper()} {first}",
            f"{first[0]}. {last}",
            f"{last}, {first[0]}.",
        ]
        return self.pick(forms)

    def doctor(self, formal: bool = True) -> str:
        first, last = self.pick(DOCS)
        forms = [
            f"Dr {first} {last}",
            f"Dr. {last}",
            f"{first} {last}, MD",
            f"Prof. {first} {last}",
            f"Dr {first[0]}. {last}",
            f"{last} {first[0]}",
            f"A/Prof {last}",
            f"{first} {last} FRACP",
        ]
        return self.ident("name", self.pick(forms if formal else forms[:3]))

    def institution(self) -> str:
        return self.ident("institution", self.pick(INST_FORMS).format(p=self.pick(PLACES), s=self.pick(SAINTS)))

    def mrn(self) -> str:
        r = self.rng
        forms = [
            f"{r.randint(100, 999)} {r.randint(100, 999)} {r.randint(1000, 9999)}",
            f"{r.choice('ABKMRT')}{r.randint(100000, 999999)}",
            f"{r.randint(10, 99)}-{r.randint(10000, 99999)}-K",
            f"UR{r.randint(1000000, 9999999)}",
            f"{r.randint(1000, 9999)}.{r.randint(1000, 9999)}",
            f"0{r.randint(100000, 999999)}",
            f"H{r.randint(10, 99)}/{r.randint(1000, 9999)}/{r.randint(1, 9)}",
        ]
        return self.ident("mrn", r.choice(forms))

    def accession(self) -> str:
        r = self.rng
        forms = [
            f"RAD/{r.randint(18, 24)}/{r.randint(1000, 99999):05d}",
            f"CMR-{r.randint(100000, 999999)}",
            f"{r.choice('XQZ')}{r.randint(10, 99)}-{r.randint(1000, 9999)}-{r.choice('ABC')}",
            f"MR{r.randint(10000000, 99999999)}",
            f"{r.randint(2018, 2024)}MR{r.randint(1000, 9999)}",
        ]
        return self.ident("accession", r.choice(forms))

    def phone(self) -> str:
        return self.ident("phone", self.pick(PHONES))

    def address(self) -> str:
        street, town = self.pick(STREETS)
        self.ident("address", street)
        self.ident("address", town)
        return f"{street}, {town}"

    def age(self) -> str:
        n = self.rng.randint(90, 103)
        return self.ident("age", self.pick([f"{n}-year-old", f"{n} year old", f"aged {n}", f"{n}yo", f"{n} y/o"]))

    def email(self) -> str:
        first, last = self.pick(DOCS)
        dom = self.pick(["kestrelvale.nhs.uk", "wexcombe-health.org", "ostmark-uni.de", "redgum.health.au"])
        local = unicodedata.normalize("NFKD", f"{first[0]}.{last}").encode("ascii", "ignore").decode().lower()
        return self.ident("email", f"{local}@{dom}")

    def url(self) -> str:
        return self.ident(
            "url",
            self.pick(
                [
                    "https://pacs.bramblewood.local/viewer?study=88812",
                    "www.caldermoor-imaging.co.uk/results",
                    "http://10.22.4.17/cmr/report/5521",
                    "https://portal.aldermere.health/p/QK7712",
                ]
            ),
        )


# --- clinical content: (text, {key: status}) pieces, written in several voices ---

NORMALS = [
    (
        [
            "Normal LV size and wall thickness.",
            "The left ventricle is normal in size and wall thickness.",
            "LV cavity size and wall thickness are within normal limits.",
            "Normal left ventricular dimensions and mass.",
            "LV: normal size, normal wall thickness.",
        ],
        {"Left.Ventricular.Dilation": "negative", "Left.Ventricular.Hypertrophy": "negative"},
    ),
    (
        [
            "The right ventricle is normal in size.",
            "Normal RV size.",
            "RV volumes are normal.",
            "The right ventricle is not dilated.",
        ],
        {"Right.Ventricular.Dilation": "negative"},
    ),
    (
        [
            "Both atria are normal in size.",
            "Normal atrial sizes.",
            "The atria are not enlarged.",
            "Left and right atria of normal size.",
        ],
        {"Left.Atrial.Dilation": "negative", "Right.Atrial.Dilation": "negative"},
    ),
    (
        [
            "No regional wall motion abnormality.",
            "No regional wall motion abnormalities are seen.",
            "Regional wall motion is normal.",
        ],
        {"LV.Aneurysm": "negative"},
    ),
    (
        [
            "The valves are normal.",
            "No significant valvular abnormality.",
            "Normal valves.",
            "Valves appear morphologically and functionally normal.",
        ],
        {
            "Severe.Aortic.Stenosis": "negative",
            "Severe.Aortic.Regurgitation": "negative",
            "Severe.Mitral.Regurgitation": "negative",
            "Severe.Tricuspid.Regurgitation": "negative",
            "Pulmonary.Stenosis": "negative",
        },
    ),
    (
        [
            "Normal pericardium.",
            "The pericardium is normal with no effusion.",
            "No pericardial effusion or thickening.",
            "Pericardium unremarkable.",
        ],
        {"Large.Pericardial.Effusion": "negative", "Pericarditis": "negative"},
    ),
    (
        [
            "No intracardiac mass or thrombus.",
            "No intracardiac masses.",
            "No cardiac mass is seen.",
            "No intracardiac thrombus or mass lesion.",
        ],
        {
            "Other.Cardiac.Mass": "negative",
            "Cardiac.Thrombus": "negative",
            "Cardiac.Tumor": "negative",
            "Atrial.Myxoma": "negative",
        },
    ),
    (
        [
            "Normal calibre aortic root and ascending aorta.",
            "The thoracic aorta is of normal calibre.",
            "Aortic root dimensions are within normal limits.",
        ],
        {"Aortic.dilation": "negative"},
    ),
    (
        ["The main pulmonary artery is of normal calibre.", "Normal sized pulmonary arteries."],
        {"Pulmonary.Dilation": "negative"},
    ),
    (
        ["The aortic valve is trileaflet.", "Tricuspid aortic valve with normal opening."],
        {"Bicuspid.Valve": "negative"},
    ),
    (["Intact interatrial septum.", "The atrial septum is intact."], {"Atrial.Septal.Defect": "negative"}),
    (["Intact interventricular septum.", "No ventricular septal defect."], {"Ventricular.Septal.Defect": "negative"}),
    (
        ["Normal RV wall thickness.", "The RV free wall is not hypertrophied."],
        {"Right.Ventricular.Hypertrophy": "negative"},
    ),
]
FUNCTION_ONLY = [
    "Normal biventricular systolic function.",
    "Good LV systolic function.",
    "Preserved global systolic function.",
    "Biventricular systolic function is normal.",
]

SCENARIOS: dict[str, list[tuple[list[str], dict[str, str]]]] = {
    "normal": [],
    "dcm": [
        (
            [
                "The left ventricle is severely dilated with global hypokinesis.",
                "Dilated LV with globally impaired contraction.",
                "Marked LV dilatation.",
            ],
            {"Left.Ventricular.Dilation": "positive"},
        ),
        (
            [
                "Mid-wall septal late enhancement, in keeping with a non-ischaemic dilated cardiomyopathy.",
                "Appearances are those of a dilated cardiomyopathy of non-ischaemic aetiology.",
                "Features consistent with non-ischemic DCM.",
            ],
            {"Non.Ischemic.cardiomyopathy": "positive"},
        ),
        (
            ["Functional mitral regurgitation, moderate.", "Mild secondary MR."],
            {"Severe.Mitral.Regurgitation": "negative"},
        ),
    ],
    "ischaemic": [
        (
            [
                "Transmural late gadolinium enhancement in the LAD territory, consistent with an old infarct.",
                "Subendocardial scar in the inferolateral wall (circumflex territory), >50% transmurality.",
                "Extensive infarction of the anterior wall and apex.",
            ],
            {"Ischemic.Cardiomyopathy": "positive"},
        ),
        (
            ["Thinned, dyskinetic apex forming a true aneurysm.", "Apical LV aneurysm.", "The apex is aneurysmal."],
            {"LV.Aneurysm": "positive"},
        ),
        (
            [
                "Apical thrombus measuring 14 x 9 mm.",
                "A small mural thrombus lies within the aneurysm.",
                "No LV thrombus.",
            ],
            {"Cardiac.Thrombus": "positive"},
        ),
    ],
    "hcm": [
        (
            [
                "Asymmetric septal hypertrophy, maximal wall thickness 21 mm, consistent with hypertrophic cardiomyopathy.",
                "Phenotype of HCM with basal septal thickness of 19 mm.",
                "Hypertrophic cardiomyopathy, predominantly septal.",
            ],
            {"Hypertrophic.Cardiomyopathy": "positive"},
        ),
        (
            [
                "Systolic anterior motion of the anterior mitral leaflet with LVOT acceleration.",
                "SAM of the mitral valve is present.",
                "There is no SAM.",
            ],
            {"Systolic.Anterior.Motion.of.Mitral": "positive"},
        ),
    ],
    "amyloid": [
        (
            [
                "Concentric LV hypertrophy (13-15 mm) with diffuse subendocardial enhancement and abnormal gadolinium "
                "kinetics, typical of cardiac amyloidosis.",
                "Appearances strongly favour cardiac amyloid.",
                "Findings are characteristic of ATTR amyloid cardiomyopathy.",
            ],
            {"Amyloid": "positive", "Left.Ventricular.Hypertrophy": "positive"},
        ),
        (
            ["Biatrial enlargement.", "Both atria are dilated."],
            {"Left.Atrial.Dilation": "positive", "Right.Atrial.Dilation": "positive"},
        ),
        (["Small pericardial effusion.", "Trace pericardial fluid."], {"Large.Pericardial.Effusion": "negative"}),
    ],
    "myocarditis": [
        (
            [
                "Subepicardial LGE in the basal inferolateral wall with matching oedema on T2 mapping, in keeping with "
                "acute myocarditis.",
                "Lake Louise criteria met; findings consistent with myocarditis.",
                "Patchy epicardial enhancement and raised native T1 typical of myocarditis.",
            ],
            {"Myocarditis": "positive"},
        ),
        (
            [
                "Small pericardial effusion with pericardial enhancement suggesting associated pericarditis.",
                "No pericardial effusion.",
            ],
            {"Pericarditis": "uncertain", "Large.Pericardial.Effusion": "negative"},
        ),
    ],
    "arvc": [
        (
            [
                "The right ventricle is dilated with regional akinesia of the free wall.",
                "Dilated RV with microaneurysms of the RV outflow tract.",
            ],
            {"Right.Ventricular.Dilation": "positive"},
        ),
        (
            [
                "Appearances fulfil major imaging criteria for arrhythmogenic right ventricular cardiomyopathy.",
                "Possible ARVC; correlate with ECG and genetics.",
                "Findings would be compatible with ARVC.",
            ],
            {"Arrhythmogenic.right.ventricular.cardiomyopathy": "positive"},
        ),
    ],
    "valve": [
        (
            [
                "Severe aortic stenosis: peak velocity 4.6 m/s, planimetered valve area 0.7 cm2.",
                "Critical aortic stenosis.",
                "Heavily calcified aortic valve with severe stenosis.",
            ],
            {"Severe.Aortic.Stenosis": "positive"},
        ),
        (
            ["Moderate aortic regurgitation, regurgitant fraction 28%.", "Mild AR.", "Trace aortic regurgitation."],
            {"Severe.Aortic.Regurgitation": "negative"},
        ),
        (
            ["Concentric LV hypertrophy secondary to pressure loading.", "Mild concentric LVH."],
            {"Left.Ventricular.Hypertrophy": "positive"},
        ),
    ],
    "mitral": [
        (
            [
                "Prolapse of the posterior mitral leaflet (P2) with a flail segment.",
                "Bileaflet mitral valve prolapse.",
                "Barlow-type mitral valve with prolapse of both leaflets.",
            ],
            {"Mitral.Valve.Prolapse": "positive"},
        ),
        (
            [
                "Severe mitral regurgitation, regurgitant volume 68 mL, regurgitant fraction 52%.",
                "Moderate-to-severe MR.",
                "Torrential mitral regurgitation.",
            ],
            {"Severe.Mitral.Regurgitation": "positive"},
        ),
        (
            ["The left atrium is markedly dilated.", "Severe LA enlargement (LAVi 74 mL/m2)."],
            {"Left.Atrial.Dilation": "positive"},
        ),
    ],
    "bicuspid": [
        (
            [
                "Bicuspid aortic valve (fusion of the right and left coronary cusps).",
                "Type 1 bicuspid aortic valve.",
                "Functionally bicuspid aortic valve.",
            ],
            {"Bicuspid.Valve": "positive"},
        ),
        (
            [
                "Dilated ascending aorta measuring 46 mm.",
                "Aortic root dilatation to 44 mm at the sinuses.",
                "The ascending aorta is aneurysmal (51 mm).",
            ],
            {"Aortic.dilation": "positive"},
        ),
        (["No coarctation.", "No evidence of coarctation of the aorta."], {"Coarctation": "negative"}),
    ],
    "tof": [
        (
            [
                "Repaired tetralogy of Fallot (transannular patch repair in infancy).",
                "Status post tetralogy of Fallot repair.",
                "Operated tetralogy of Fallot.",
            ],
            {"Tetralogy": "positive", "Previous.Surgery": "positive"},
        ),
        (
            ["The RV is severely dilated (RVEDVi 165 mL/m2).", "Marked RV dilatation."],
            {"Right.Ventricular.Dilation": "positive"},
        ),
        (
            [
                "Free pulmonary regurgitation, regurgitant fraction 45%; no residual pulmonary stenosis.",
                "No significant branch pulmonary artery stenosis.",
            ],
            {"Pulmonary.Stenosis": "negative"},
        ),
    ],
    "coarct": [
        (
            [
                "Repaired coarctation of the aorta with mild residual narrowing at the isthmus.",
                "Previous coarctation repair (end-to-end anastomosis), no recoarctation.",
            ],
            {"Coarctation": "positive", "Previous.Surgery": "positive"},
        ),
        (["Bicuspid aortic valve.", "The aortic valve is bicuspid."], {"Bicuspid.Valve": "positive"}),
    ],
    "shunt": [
        (
            [
                "Secundum atrial septal defect measuring 18 mm with left-to-right shunt (Qp:Qs 1.9).",
                "Large secundum ASD.",
                "Defect in the interatrial septum consistent with a sinus venosus defect.",
            ],
            {"Atrial.Septal.Defect": "positive"},
        ),
        (
            ["The right atrium and ventricle are dilated.", "Right heart dilatation due to volume loading."],
            {"Right.Atrial.Dilation": "positive", "Right.Ventricular.Dilation": "positive"},
        ),
        (["Dilated main pulmonary artery (34 mm).", "Pulmonary trunk enlarged."], {"Pulmonary.Dilation": "positive"}),
    ],
    "vsd": [
        (
            [
                "Small perimembranous ventricular septal defect with restrictive left-to-right flow.",
                "Muscular VSD in the apical septum.",
            ],
            {"Ventricular.Septal.Defect": "positive"},
        ),
    ],
    "peri": [
        (
            [
                "Large circumferential pericardial effusion measuring up to 28 mm.",
                "Large pericardial effusion without tamponade physiology.",
                "Moderate pericardial effusion.",
            ],
            {"Large.Pericardial.Effusion": "positive"},
        ),
        (
            [
                "Thickened, enhancing pericardium consistent with active pericarditis.",
                "Pericardial thickening and enhancement, in keeping with pericarditis.",
            ],
            {"Pericarditis": "positive"},
        ),
    ],
    "mass": [
        (
            [
                "A 3 cm mobile mass attached to the interatrial septum, typical of an atrial myxoma.",
                "Left atrial mass arising from the fossa ovalis, most likely a myxoma.",
            ],
            {"Atrial.Myxoma": "positive", "Other.Cardiac.Mass": "positive"},
        ),
        (
            [
                "Lipomatous hypertrophy of the interatrial septum (fat signal, 17 mm).",
                "Fatty infiltration of the atrial septum, lipomatous hypertrophy.",
            ],
            {"Lipomatous.Atrial.Wall": "positive"},
        ),
    ],
    "ph": [
        (
            [
                "Features of pulmonary hypertension: dilated, hypertrophied RV with septal flattening.",
                "Appearances in keeping with pulmonary arterial hypertension.",
                "Pulmonary hypertension is suspected.",
            ],
            {
                "Pulmonary.Hypertension": "positive",
                "Right.Ventricular.Hypertrophy": "positive",
                "Right.Ventricular.Dilation": "positive",
            },
        ),
        (
            ["Moderate tricuspid regurgitation.", "Severe tricuspid regurgitation with a dilated annulus."],
            {"Severe.Tricuspid.Regurgitation": "negative"},
        ),
        (["Dilated pulmonary trunk, 38 mm.", "Enlarged main PA."], {"Pulmonary.Dilation": "positive"}),
    ],
    "lvnc": [
        (
            [
                "Prominent trabeculation with a non-compacted to compacted ratio of 2.8 in diastole, meeting criteria for "
                "LV non-compaction.",
                "Excessive trabeculation; left ventricular noncompaction is possible.",
                "Hypertrabeculated LV, consistent with LVNC.",
            ],
            {"LV.Non.Compaction": "positive"},
        ),
    ],
    "sarcoid": [
        (
            [
                "Patchy mid-wall and epicardial enhancement of the basal septum and RV insertion points, suspicious for "
                "cardiac sarcoidosis.",
                "Multifocal LGE with hilar lymphadenopathy, consistent with cardiac sarcoid.",
                "Cardiac sarcoidosis cannot be excluded.",
            ],
            {"Sarcoidosis": "positive"},
        ),
    ],
    "tumour": [
        (
            [
                "An enhancing 4 cm mass infiltrating the right atrial wall, consistent with a metastasis.",
                "Large infiltrative mass of the RV free wall with pericardial involvement; appearances favour a primary "
                "cardiac sarcoma.",
            ],
            {"Cardiac.Tumor": "positive", "Other.Cardiac.Mass": "positive"},
        ),
        (
            ["Moderate pericardial effusion.", "Small haemorrhagic-appearing pericardial effusion."],
            {"Large.Pericardial.Effusion": "negative"},
        ),
    ],
    "ps": [
        (
            [
                "Valvular pulmonary stenosis with a thickened, doming valve; peak velocity 3.6 m/s.",
                "Moderate-to-severe pulmonary valve stenosis.",
            ],
            {"Pulmonary.Stenosis": "positive"},
        ),
        (
            [
                "Post-stenotic dilatation of the main pulmonary artery (31 mm).",
                "Dilated MPA and left pulmonary artery.",
            ],
            {"Pulmonary.Dilation": "positive"},
        ),
        (
            ["Concentric RV hypertrophy, free wall 8 mm.", "Hypertrophied right ventricle."],
            {"Right.Ventricular.Hypertrophy": "positive"},
        ),
    ],
    "surgery": [
        (
            [
                "Post CABG: sternal wires noted.",
                "Previous mechanical mitral valve replacement, artefact limits the assessment.",
                "Bioprosthetic aortic valve in situ (surgical AVR 2016).",
            ],
            {"Previous.Surgery": "positive"},
        ),
    ],
}
# The status depends on the variant chosen: fixed per (scenario, piece, variant) where the text says otherwise.
OVERRIDES = {
    ("ischaemic", 2, 2): {"Cardiac.Thrombus": "negative"},
    ("hcm", 1, 2): {"Systolic.Anterior.Motion.of.Mitral": "negative"},
    ("myocarditis", 1, 1): {"Large.Pericardial.Effusion": "negative"},
    ("arvc", 1, 1): {"Arrhythmogenic.right.ventricular.cardiomyopathy": "uncertain"},
    ("valve", 2, 1): {"Left.Ventricular.Hypertrophy": "positive"},
    ("lvnc", 0, 1): {"LV.Non.Compaction": "uncertain"},
    ("sarcoid", 0, 0): {"Sarcoidosis": "uncertain"},
    ("sarcoid", 0, 2): {"Sarcoidosis": "uncertain"},
    ("ph", 0, 2): {
        "Pulmonary.Hypertension": "uncertain",
        "Right.Ventricular.Hypertrophy": None,
        "Right.Ventricular.Dilation": None,
    },
    ("ph", 1, 1): {"Severe.Tricuspid.Regurgitation": "positive"},
    ("peri", 0, 2): {"Large.Pericardial.Effusion": "negative"},
    ("mitral", 0, 1): {},
    ("surgery", 0, 1): {"Prosthetic.Valve": "positive"},
    ("amyloid", 0, 1): {"Left.Ventricular.Hypertrophy": None},
    ("amyloid", 0, 2): {"Left.Ventricular.Hypertrophy": None},
    ("ph", 0, 1): {"Right.Ventricular.Hypertrophy": None, "Right.Ventricular.Dilation": None},
    ("surgery", 0, 2): {"Prosthetic.Valve": "positive"},
}
# In myocarditis piece 1 variant 0 the effusion is small (negative) and pericarditis only suggested (uncertain).
OVERRIDES[("myocarditis", 1, 0)] = {"Large.Pericardial.Effusion": "negative", "Pericarditis": "uncertain"}
OVERRIDES[("myocarditis", 1, 1)] = {"Large.Pericardial.Effusion": "negative", "Pericarditis": None}
# Scenario -> NORMALS indices that do not contradict it.
BLOCKS = {
    "dcm": {0, 3, 4},
    "ischaemic": {3, 6},
    "hcm": {0},
    "amyloid": {0, 2, 5},
    "myocarditis": {5},
    "arvc": {1, 3},
    "valve": {0, 4, 9},
    "mitral": {2, 4},
    "bicuspid": {4, 7, 9},
    "tof": {1, 4, 8, 11, 12},
    "coarct": {7, 9},
    "shunt": {1, 2, 8, 10, 12},
    "vsd": {11},
    "peri": {5},
    "mass": {2, 6, 10},
    "ph": {1, 4, 8, 12},
    "lvnc": {0},
    "sarcoid": set(),
    "surgery": {4},
    "tumour": {5, 6},
    "ps": {4, 8, 12},
}
IMPRESSION = {
    "normal": ["Structurally and functionally normal heart.", "Normal cardiac MRI.", "No abnormality demonstrated."],
    "dcm": ["Dilated cardiomyopathy, non-ischaemic pattern."],
    "ischaemic": [
        "Ischaemic cardiomyopathy with a large LAD infarct.",
        "Prior myocardial infarction, non-viable anterior wall.",
    ],
    "hcm": ["Hypertrophic cardiomyopathy.", "Septal HCM; no LVOT obstruction at rest."],
    "amyloid": ["Cardiac amyloidosis.", "Infiltrative cardiomyopathy, most likely amyloid."],
    "myocarditis": ["Acute myocarditis.", "Findings in keeping with recent myocarditis."],
    "arvc": ["Right ventricular dilatation and dysfunction."],
    "valve": ["Severe aortic stenosis.", "Severe calcific AS with preserved LV function."],
    "mitral": ["Degenerative mitral valve disease with severe regurgitation."],
    "bicuspid": ["Bicuspid aortopathy."],
    "tof": [
        "Repaired ToF with a dilated RV.",
        "Post-repair tetralogy: RV volumes approaching the threshold for pulmonary valve replacement.",
    ],
    "coarct": ["Repaired coarctation without significant re-narrowing."],
    "shunt": ["Secundum ASD with a significant left-to-right shunt."],
    "vsd": ["Small restrictive VSD."],
    "peri": ["Pericardial disease as above."],
    "mass": ["Left atrial mass, most likely myxoma; lipomatous septal hypertrophy."],
    "ph": ["Right heart changes of pulmonary hypertension."],
    "lvnc": ["Hypertrabeculated left ventricle."],
    "sarcoid": [
        "Pattern of enhancement raises the possibility of cardiac sarcoidosis.",
        "Cardiac sarcoidosis with features of active inflammation.",
    ],
    "surgery": ["Post-operative appearances as described."],
    "tumour": ["Infiltrative cardiac tumour, most likely malignant.", "Right-sided cardiac mass as described."],
    "ps": ["Pulmonary valve stenosis with RV pressure loading."],
}
IMPRESSION_LABELS = {
    ("ischaemic", 0): {"Ischemic.Cardiomyopathy": "positive"},
    ("ischaemic", 1): {"Ischemic.Cardiomyopathy": "positive"},
    ("hcm", 0): {"Hypertrophic.Cardiomyopathy": "positive"},
    ("hcm", 1): {"Hypertrophic.Cardiomyopathy": "positive"},
    ("amyloid", 0): {"Amyloid": "positive"},
    ("amyloid", 1): {"Amyloid": "positive"},
    ("myocarditis", 0): {"Myocarditis": "positive"},
    ("myocarditis", 1): {"Myocarditis": "positive"},
    ("arvc", 0): {"Right.Ventricular.Dilation": "positive"},
    ("valve", 0): {"Severe.Aortic.Stenosis": "positive"},
    ("valve", 1): {"Severe.Aortic.Stenosis": "positive"},
    ("mitral", 0): {"Severe.Mitral.Regurgitation": "positive"},
    ("bicuspid", 0): {"Bicuspid.Valve": "positive", "Aortic.dilation": "positive"},
    ("tof", 0): {"Tetralogy": "positive", "Right.Ventricular.Dilation": "positive", "Previous.Surgery": "positive"},
    ("tof", 1): {"Tetralogy": "positive", "Previous.Surgery": "positive"},
    ("coarct", 0): {"Coarctation": "positive", "Previous.Surgery": "positive"},
    ("shunt", 0): {"Atrial.Septal.Defect": "positive"},
    ("vsd", 0): {"Ventricular.Septal.Defect": "positive"},
    ("mass", 0): {"Other.Cardiac.Mass": "positive", "Atrial.Myxoma": "positive", "Lipomatous.Atrial.Wall": "positive"},
    ("ph", 0): {"Pulmonary.Hypertension": "positive"},
    ("sarcoid", 0): {"Sarcoidosis": "uncertain"},
    ("sarcoid", 1): {"Sarcoidosis": "positive"},
    ("tumour", 0): {"Cardiac.Tumor": "positive"},
    ("tumour", 1): {"Other.Cardiac.Mass": "positive"},
    ("ps", 0): {"Pulmonary.Stenosis": "positive", "Right.Ventricular.Hypertrophy": "positive"},
    ("dcm", 0): {"Non.Ischemic.cardiomyopathy": "positive"},
}
QUESTIONS = [
    "?Cardiomyopathy.",
    "Query HCM.",
    "Rule out myocarditis.",
    "?Infiltration.",
    "Assess for ARVC.",
    "Evaluate for LV thrombus.",
    "Family history of sudden cardiac death.",
    "Father with hypertrophic cardiomyopathy.",
    "?Cardiac sarcoid.",
    "Breathlessness and a murmur.",
    "Palpitations. ?Structural heart disease.",
    "Chest pain with raised troponin and unobstructed coronaries.",
]
DISTRACT = [
    "RVEF {r}%",
    "RV ejection fraction {r} %",
    "right ventricular EF of {r}%",
    "RV: EF {r}%",
]
PRIOR = [
    "Previous CMR on {d}: LVEF {p}%.",
    "Echocardiogram ({d}) estimated the EF at {p}%.",
    "A nuclear MUGA scan on {d} gave an LVEF of {p}%.",
    "Prior SPECT ({d}): EF {p}%.",
    "TTE at the referring hospital reported an ejection fraction of {p} percent.",
    "Compared with the study of {d}, when the LVEF was {p}%, function has changed.",
]


def lvef_phrase(c: Case, v: int) -> str:
    """A statement of the current LVEF ``v``; sets the gold (midpoints for ranges, fractions in percent)."""
    kind = c.rng.randrange(14)
    c.lvef = float(v)
    if kind == 0:
        return f"LVEF {c.m(f'{v}%')}."
    if kind == 1:
        return f"Left ventricular ejection fraction: {c.m(f'{v} %')}."
    if kind == 2:
        lo = v - 2
        c.lvef = (lo + lo + 5) / 2
        return f"LVEF {c.m(f'{lo}-{lo + 5}%')}."
    if kind == 3:
        return f"The EF is approximately {c.m(f'{v}%')}."
    if kind == 4:
        return f"LVEF: {c.m(f'0.{v}')}."
    if kind == 5 and v in WORDS:
        return f"The ejection fraction measures {WORDS[v]} percent."
    if kind == 6:
        return (
            f"Systolic function is {'preserved' if v >= 55 else 'reduced'} with an ejection fraction of {c.m(f'{v}%')}."
        )
    if kind == 7:
        return f"LV EF = {c.m(f'{v}%')} (normal range 57-77%)."
    if kind == 8:
        return f"Volumetric LVEF {c.m(f'{v}%')} by short-axis stack."
    if kind == 9 and v in WORDS:
        return f"LVEF of {WORDS[v]} per cent, by volumetry."
    if kind == 10 and c.style == "european":
        c.lvef = v + 0.5
        return f"LV EF {c.m(f'{v},5 %')}."
    if kind == 11:
        return f"LVEF {c.m(f'{v}%')} (previously {c.m(f'{v - 10}%')} on {c.date(partial=True)})."
    if kind == 12:
        return f"The LV ejection fraction has improved from {c.m(f'{v - 12}%')} to {c.m(f'{v}%')}."
    return f"Ejection fraction {c.m(f'{v}%')}."


def volumes(c: Case) -> list[str]:
    r = c.rng
    edv, esv = r.randint(120, 320), r.randint(40, 200)
    bsa = 1.9
    out = []
    if r.random() < 0.6:
        c.measures["lvedv_ml"], c.measures["lvedvi_ml_m2"] = edv, round(edv / bsa)
        out.append(f"LVEDV {c.m(f'{edv} mL')} ({c.m(f'{round(edv / bsa)} mL/m2')})")
    if r.random() < 0.5:
        c.measures["lvesv_ml"] = esv
        out.append(f"LVESV {c.m(f'{esv} mL')}")
    if r.random() < 0.4:
        mass = r.randint(70, 220)
        c.measures["lv_mass_g"] = mass
        out.append(f"LV mass {c.m(f'{mass} g')}")
    return out


def findings(c: Case, scenario: str) -> tuple[list[str], list[str]]:
    body, impression = [], []
    for i, (variants, labels) in enumerate(SCENARIOS[scenario]):
        j = c.rng.randrange(len(variants))
        body.append(variants[j])
        for key, status in {**labels, **OVERRIDES.get((scenario, i, j), {})}.items():
            if status is None:
                c.labels.pop(key, None)
            elif c.labels.get(key) != "positive":
                c.labels[key] = status
    blocked = BLOCKS.get(scenario, set())
    normals = [n for k, n in enumerate(NORMALS) if k not in blocked]
    for variants, labels in c.rng.sample(normals, k=min(len(normals), c.rng.randint(2, 6))):
        body.append(c.pick(variants))
        for key, status in labels.items():
            c.labels.setdefault(key, status)
    if c.rng.random() < 0.5:
        body.append(
            c.pick(FUNCTION_ONLY)
            if scenario in ("normal", "valve", "bicuspid", "mass", "vsd", "hcm", "amyloid", "lvnc")
            else ""
        )
    k = c.rng.randrange(len(IMPRESSION[scenario]))
    impression.append(IMPRESSION[scenario][k])
    for key, status in IMPRESSION_LABELS.get((scenario, k), {}).items():
        c.labels[key] = status
    return [b for b in body if b], impression


def measurement_lines(c: Case, scenario: str) -> tuple[list[str], list[str]]:
    """Findings lines about function (current LVEF, RV EF, volumes) and history lines with other studies' EF."""
    r = c.rng
    lines, history = [], []
    low = [25, 30, 35, 38, 40, 42, 45, 47, 50, 33]
    v = r.choice(
        [55, 60, 65, 58, 62, 67, 71, 52] + (low if scenario in ("dcm", "ischaemic", "amyloid", "mitral") else [])
    )
    if r.random() < 0.93:
        lines.append(lvef_phrase(c, v))
    if r.random() < 0.55:
        rv = r.randint(32, 66)
        c.measures["rvef"] = rv
        line = r.choice(DISTRACT).format(r=rv)
        c.m(line.split(" ")[-2] + " %" if line.endswith(" %") else line.split(" ")[-1])
        lines.append(line + ".")
    if vols := volumes(c):
        lines.append(", ".join(vols) + ".")
    if r.random() < 0.45 or c.style == "comparison":
        p = r.choice([20, 25, 30, 35, 40, 45, 50, 55, 60])
        while p == c.lvef:
            p += 5
        history.append(r.choice(PRIOR).format(d=c.date(partial=r.random() < 0.4), p=p))
    return lines, history


def header(c: Case, first: str, last: str) -> str:
    s = c.style
    name = c.ident("name", c.name_forms(first, last))
    dob, mrn, acc, exam = c.date(birth=True), c.mrn(), c.accession(), c.date()
    if s in ("us_template", "comparison", "addendum", "table"):
        return (
            f"PATIENT: {name}    MRN: {mrn}    DOB: {dob}\nACCESSION #: {acc}    EXAM DATE: {exam}\n"
            f"REFERRING PHYSICIAN: {c.doctor()}\nLOCATION: {c.institution()}\n"
        )
    if s == "uk_nhs":
        return (
            f"Name: {name}\nNHS Number: {c.ident('mrn', c.pick(['943 476 5919', '401-023-2137', '6541237890']))}"
            f"   Hospital No: {mrn}\nDate of Birth: {dob}   Date of scan: {exam}\n"
            f"Referrer: {c.doctor()}, {c.institution()}\n"
        )
    if s in ("au_template", "au_narrative"):
        return (
            f"UR No. {mrn}   Surname: {last.upper()}   Given names: {first}\nD.O.B.: {dob}   "
            f"Requesting Dr: {c.doctor()} (Ph {c.phone()})\nExamination: Cardiac MRI   Date: {exam}   "
            f"Our ref: {acc}\n"
        )
    if s == "european":
        return (
            f"Patient: {last}, {first}; DOB {dob}; Pat.-ID {mrn}; Case no. {acc}\n"
            f"Klinik für Kardiologie, {c.institution()}, {c.address()}\nExamination date: {exam}\n"
        )
    if s == "dictated_caps":
        return f"NAME {last.upper()} {first.upper()} MR NUMBER {mrn} DATE OF SERVICE {exam} ACC {acc}\n"
    if s == "telegraphic":
        return f"{name} / {mrn} / {dob} / {acc}\n"
    if s == "uk_letter":
        return (
            f"{c.institution()}\nDepartment of Cardiology\n{c.address()}\nTel {c.phone()}\n\n{exam}\n\n"
            f"Dear {c.doctor(formal=False)},\n\nRe: {name}, DOB {dob}, Hosp no {mrn}\n\n"
        )
    return f"{name} (MRN {mrn}), born {dob}, scanned {exam}. Ref {acc}.\n"


def history_line(c: Case, scenario: str, first: str) -> str:
    r = c.rng
    whos = [
        lambda: f"{c.age()} woman",
        lambda: f"{c.age()} man",
        lambda: "Patient",
        lambda: f"{r.randint(19, 85)} year old man",
        lambda: f"{r.randint(19, 85)}F",
    ]
    who = r.choice(whos)() if r.random() < 0.7 else "Patient"
    bits = [f"{who[0].upper()}{who[1:]}. {r.choice(QUESTIONS)}"]
    if r.random() < 0.4:
        bits.append(f"Symptoms since {c.date(partial=True)}.")
    if r.random() < 0.3:
        bits.append(f"Previously under the care of {c.institution()}.")
    if r.random() < 0.2:
        rel = r.choice(FIRST)
        c.ident("name", rel)
        bits.append(f"Accompanied by her daughter {rel}." if r.random() < 0.5 else f"Her son {rel} gives the history.")
    return " ".join(bits)


def signature(c: Case) -> str:
    r = c.rng
    forms = [
        lambda: f"Electronically signed by {c.doctor()} on {c.date()} at 16:42",
        lambda: (
            f"Reported by {c.doctor()}, Consultant Cardiologist, {c.institution()}. "
            f"Ext. {c.ident('phone', str(r.randint(2000, 7999)))}"
        ),
        lambda: f"Dictated by {c.doctor()} / transcribed {c.ident('name', c.pick(['jk', 'mls', 'TRB']))} {c.date()}",
        lambda: f"{c.doctor()}\nCardiac Imaging Fellow\n{c.email()}",
        lambda: f"Verified: {c.doctor()} {c.date()} - for queries phone {c.phone()} or fax {c.phone()}",
        lambda: f"Report available at {c.url()}; {c.doctor()}",
    ]
    return r.choice(forms)()


def assemble(c: Case, scenario: str) -> str:
    r = c.rng
    first, last = c.patient()
    c.ident("name", first)
    c.ident("name", last)
    head = header(c, first, last)
    body, impression = findings(c, scenario)
    mlines, prior = measurement_lines(c, scenario)
    body = body[:1] + mlines + body[1:]
    hist = history_line(c, scenario, first)
    where = ""
    if r.random() < 0.5:
        where = r.choice(
            [
                lambda: f"Study performed at {c.institution()} on a 1.5 T scanner.",
                lambda: f"Scanned at {c.ident('institution', r.choice(PLACES))} (3 T).",
                lambda: f"Images transferred from {c.institution()} for a second opinion.",
            ]
        )()
    if r.random() < 0.3:
        body.append(r.choice(["Normal ranges per SCMR 2020 reference values.", "Reference ranges: SCMR 2020."]))
        c.keep.append("SCMR 2020")
    text = style_text(c, head, hist, prior, where, body, impression)
    if c.style == "addendum" or r.random() < 0.08:
        text += (
            f"\n\nADDENDUM {c.date()}: results discussed with {c.doctor()} by telephone ({c.phone()}). "
            f"Copy sent to {c.institution()}."
        )
    if c.style == "dictated_caps":
        text = text.upper()
    return text


def style_text(c: Case, head: str, hist: str, prior: list[str], where: str, body: list[str], imp: list[str]) -> str:
    s = c.style
    sig = signature(c)
    if s in ("us_template", "comparison", "addendum", "dictated_caps"):
        comp = f"COMPARISON: {' '.join(prior) or 'None.'}\n" if s != "dictated_caps" else " ".join(prior) + "\n"
        return (
            f"{head}\nINDICATION: {hist}\nTECHNIQUE: Cine SSFP, T1/T2 mapping, LGE. {where}\n{comp}"
            f"FINDINGS:\n"
            + "\n".join(body)
            + "\n\nIMPRESSION:\n"
            + "\n".join(f"{i + 1}. {x}" for i, x in enumerate(imp))
            + f"\n\n{sig}"
        )
    if s == "table":
        rows = [line for line in body if "LVEF" in line or "EF" in line or "mL" in line]
        rest = [line for line in body if line not in rows]
        table = "\n".join(f"| {line.rstrip('.')} |" for line in rows)
        return (
            f"{head}\nHistory: {hist} {' '.join(prior)}\n\nQuantification\n{table}\n\nFindings: "
            + " ".join(rest)
            + "\n\nConclusion: "
            + " ".join(imp)
            + f"\n{sig}"
        )
    if s == "uk_nhs":
        return (
            f"{head}\nClinical details: {hist} {' '.join(prior)}\n\nReport: {where} "
            + " ".join(body)
            + "\n\nConclusion: "
            + " ".join(imp)
            + f"\n\n{sig}"
        )
    if s == "uk_letter":
        return (
            f"{head}Thank you for referring this patient. {hist} {' '.join(prior)} {where}\n\n"
            "The scan showed the following. "
            + " ".join(body)
            + "\n\nIn summary: "
            + " ".join(imp)
            + f"\n\nYours sincerely,\n\n{sig}"
        )
    if s == "au_template":
        return (
            f"{head}\nClinical notes: {hist} {' '.join(prior)}\n\nReport:\n"
            + "\n".join(body)
            + "\n\nComment: "
            + " ".join(imp)
            + f"\n\n{sig}"
        )
    if s == "au_narrative":
        return f"{head}\n{hist} {' '.join(prior)} {where} " + " ".join(body) + " Overall: " + " ".join(imp) + f"\n{sig}"
    if s == "european":
        return (
            f"{head}\nIndication: {hist} {' '.join(prior)}\n\nFindings: "
            + " ".join(body)
            + "\n\nAssessment: "
            + " ".join(imp)
            + f"\n\n{sig}"
        )
    if s == "telegraphic":
        return (
            f"{head}Hx: {hist} {' '.join(prior)}\n"
            + "\n".join(f"- {b}" for b in body)
            + "\nImp: "
            + " ".join(imp)
            + f"\n{sig}"
        )
    if s == "numbered":
        return (
            f"{head}\nReason for study: {hist}\nComparison: {' '.join(prior) or 'none'}\nFindings:\n"
            + "\n".join(f"{i + 1}) {b}" for i, b in enumerate(body))
            + "\nConclusions:\n"
            + "\n".join(f"{i + 1}) {x}" for i, x in enumerate(imp))
            + f"\n{sig}"
        )
    return f"{head}\n{hist} {' '.join(prior)} {where} " + " ".join(body + imp) + f"\n{sig}"


STYLES = [
    "us_template",
    "us_narrative",
    "uk_nhs",
    "uk_letter",
    "au_template",
    "au_narrative",
    "european",
    "dictated_caps",
    "addendum",
    "comparison",
    "telegraphic",
    "table",
    "numbered",
]


def main() -> None:
    rng = random.Random(SEED)
    scenarios = [s for s in SCENARIOS if s != "normal"]
    rows = []
    for i in range(169):
        style = STYLES[i % len(STYLES)]
        scenario = scenarios[(i - i // 5) % len(scenarios)] if i % 5 else "normal"
        c = Case(rng, style)
        text = assemble(c, scenario)
        low = text.lower()
        ids = [d for d in c.ids if d["text"].lower() in low]
        ids = [d for k, d in enumerate(ids) if d not in ids[:k]]
        rows.append(
            {
                "id": f"frozen-{i + 1:03d}",
                "style": style,
                "scenario": scenario,
                "text": text,
                "labels": dict(sorted(c.labels.items())),
                "lvef": c.lvef,
                "measures": c.measures,
                "identifiers": ids,
                "keep": c.keep,
            }
        )
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} reports -> {OUT}")


if __name__ == "__main__":
    main()
