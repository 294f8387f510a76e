"""How reports name each condition: positive phrasings (name or common synonyms) and negated noun phrases."""

from __future__ import annotations

__all__ = ["NEGATABLE", "POSITIVE", "RELATED"]

POSITIVE: dict[str, tuple[str, ...]] = {
    "Amyloid": ("features in keeping with cardiac amyloidosis", "appearances typical of cardiac amyloidosis"),
    "Aortic.dilation": ("dilated aortic root", "aortic root dilation", "dilatation of the ascending aorta"),
    "Arrhythmogenic.right.ventricular.cardiomyopathy": (
        "findings meeting criteria for arrhythmogenic right ventricular cardiomyopathy",
        "appearances consistent with ARVC",
    ),
    "Atrial.Myxoma": ("mobile left atrial myxoma attached to the interatrial septum", "left atrial myxoma"),
    "Atrial.Septal.Defect": ("secundum atrial septal defect with left-to-right shunt", "atrial septal defect (ASD)"),
    "Bicuspid.Valve": ("bicuspid aortic valve", "bicuspid morphology of the aortic valve"),
    "Cardiac.Thrombus": ("apical left ventricular thrombus", "laminated LV thrombus at the apex"),
    "Cardiac.Tumor": ("intramyocardial cardiac tumor of the lateral wall", "cardiac tumour involving the LV wall"),
    "Hypertrophic.Cardiomyopathy": ("asymmetric septal hypertrophy consistent with hypertrophic cardiomyopathy",
                                    "hypertrophic cardiomyopathy (HCM) phenotype"),
    "Ischemic.Cardiomyopathy": ("regional akinesis in a coronary distribution consistent with ischemic cardiomyopathy",
                                "ischaemic cardiomyopathy with regional wall thinning"),
    "LV.Non.Compaction": ("prominent trabeculation meeting criteria for left ventricular non-compaction",
                          "LV non-compaction"),
    "Large.Pericardial.Effusion": ("large pericardial effusion", "large circumferential pericardial effusion"),
    "Left.Atrial.Dilation": ("dilated left atrium", "left atrial dilation", "left atrial enlargement"),
    "Left.Ventricular.Dilation": ("dilated left ventricle", "left ventricular dilatation"),
    "Left.Ventricular.Hypertrophy": ("concentric left ventricular hypertrophy", "concentric LVH"),
    "Lipomatous.Atrial.Wall": ("lipomatous hypertrophy of the interatrial septum", "lipomatous atrial septum"),
    "Myocarditis": ("clinical picture and findings compatible with myocarditis", "recent myocarditis"),
    "Non.Ischemic.cardiomyopathy": ("globally impaired function consistent with non-ischemic cardiomyopathy",
                                    "dilated non-ischaemic cardiomyopathy"),
    "Other.Cardiac.Mass": ("right atrial mass of uncertain nature", "cardiac mass in the right atrium"),
    "Pericarditis": ("thickened pericardium in keeping with pericarditis", "acute pericarditis"),
    "Previous.Surgery": (
        "sternotomy wires from previous cardiac surgery",
        "post-surgical changes after prior cardiac surgery",
    ),
    "Prosthetic.Valve": ("prosthetic valve artefact", "mechanical prosthetic valve in situ"),
    "Pulmonary.Dilation": ("dilated main pulmonary artery", "pulmonary artery dilation"),
    "Pulmonary.Hypertension": ("findings in keeping with pulmonary hypertension", "pulmonary arterial hypertension"),
    "Pulmonary.Stenosis": ("pulmonary valve stenosis with systolic flow acceleration", "pulmonary stenosis"),
    "Right.Atrial.Dilation": ("dilated right atrium", "right atrial enlargement"),
    "Right.Ventricular.Dilation": ("dilated right ventricle", "right ventricular dilatation"),
    "Right.Ventricular.Hypertrophy": ("right ventricular hypertrophy", "hypertrophied RV free wall"),
    "Sarcoidosis": ("known cardiac sarcoidosis", "findings compatible with cardiac sarcoidosis"),
    "Severe.Aortic.Stenosis": ("severe aortic stenosis", "severe aortic valve stenosis with a systolic jet"),
    "Severe.Mitral.Regurgitation": ("severe mitral regurgitation", "severe MR with a broad regurgitant jet"),
    "Systolic.Anterior.Motion.of.Mitral": ("systolic anterior motion of the mitral valve",
                                           "SAM of the anterior mitral leaflet"),
    "Tetralogy": ("repaired tetralogy of Fallot", "status post tetralogy of Fallot repair"),
    "Ventricular.Septal.Defect": ("ventricular septal defect with a left-to-right jet", "perimembranous VSD"),
    "Severe.Aortic.Regurgitation": ("severe aortic regurgitation", "severe aortic insufficiency"),
    "Severe.Tricuspid.Regurgitation": ("severe tricuspid regurgitation", "severe TR"),
    "Mitral.Valve.Prolapse": ("mitral valve prolapse", "prolapse of the posterior mitral leaflet"),
    "LV.Aneurysm": ("apical left ventricular aneurysm", "dyskinetic apical LV aneurysm"),
    "Coarctation": ("known coarctation of the aorta", "aortic coarctation"),
}  # fmt: skip
"""Positive mentions: each names the condition or a synonym a clinical labeler recognises."""

NEGATABLE: dict[str, tuple[str, ...]] = {
    "Large.Pericardial.Effusion": ("pericardial effusion",),
    "Cardiac.Thrombus": ("LV thrombus", "intracardiac thrombus"),
    "Atrial.Septal.Defect": ("atrial septal defect",),
    "Ventricular.Septal.Defect": ("ventricular septal defect",),
    "Hypertrophic.Cardiomyopathy": ("features of hypertrophic cardiomyopathy",),
    "Left.Ventricular.Hypertrophy": ("left ventricular hypertrophy",),
    "Systolic.Anterior.Motion.of.Mitral": ("systolic anterior motion of the mitral valve",),
    "Mitral.Valve.Prolapse": ("mitral valve prolapse",),
    "Severe.Mitral.Regurgitation": ("significant mitral regurgitation",),
    "Severe.Aortic.Regurgitation": ("significant aortic regurgitation",),
    "Severe.Aortic.Stenosis": ("aortic stenosis",),
    "Severe.Tricuspid.Regurgitation": ("significant tricuspid regurgitation",),
    "Aortic.dilation": ("aortic root dilation",),
    "Pulmonary.Dilation": ("pulmonary artery dilation",),
    "Atrial.Myxoma": ("intracardiac mass",),
    "Left.Ventricular.Dilation": ("left ventricular dilation",),
    "Right.Ventricular.Dilation": ("right ventricular dilation",),
    "LV.Aneurysm": ("left ventricular aneurysm",),
    "LV.Non.Compaction": ("left ventricular non-compaction",),
    "Bicuspid.Valve": ("bicuspid aortic valve",),
}
"""Absent conditions a report may negate explicitly ("No pericardial effusion.")."""

RELATED: dict[str, tuple[str, ...]] = {
    "Large.Pericardial.Effusion": ("Amyloid", "Pericarditis", "Myocarditis"),
    "Atrial.Myxoma": ("Cardiac.Tumor", "Other.Cardiac.Mass", "Cardiac.Thrombus"),
    "Cardiac.Thrombus": ("Atrial.Myxoma", "Cardiac.Tumor", "Other.Cardiac.Mass"),
    "Ventricular.Septal.Defect": ("Tetralogy",),
    "Left.Ventricular.Hypertrophy": ("Hypertrophic.Cardiomyopathy", "Amyloid"),
    "Hypertrophic.Cardiomyopathy": ("Left.Ventricular.Hypertrophy", "Amyloid"),
    "Severe.Mitral.Regurgitation": ("Systolic.Anterior.Motion.of.Mitral", "Mitral.Valve.Prolapse"),
    "Severe.Aortic.Stenosis": ("Bicuspid.Valve", "Prosthetic.Valve"),
    "Severe.Aortic.Regurgitation": ("Bicuspid.Valve", "Prosthetic.Valve"),
    "Bicuspid.Valve": ("Prosthetic.Valve",),
}
"""A negation is skipped when a related condition is positive (it would read as a contradiction)."""

GROUPS = ("Left ventricle", "Right ventricle", "Atria and septa", "Valves", "Pericardium", "Great vessels", "Other")
"""The structures a report's findings are ordered by."""

_GROUP_KEYS = (
    ("Amyloid", "Cardiac.Thrombus", "Cardiac.Tumor", "Hypertrophic.Cardiomyopathy", "Ischemic.Cardiomyopathy",
     "LV.Non.Compaction", "Left.Ventricular.Dilation", "Left.Ventricular.Hypertrophy", "Myocarditis",
     "Non.Ischemic.cardiomyopathy", "Sarcoidosis", "LV.Aneurysm"),
    ("Arrhythmogenic.right.ventricular.cardiomyopathy", "Pulmonary.Hypertension", "Right.Ventricular.Dilation",
     "Right.Ventricular.Hypertrophy", "Tetralogy"),
    ("Atrial.Myxoma", "Atrial.Septal.Defect", "Left.Atrial.Dilation", "Lipomatous.Atrial.Wall", "Other.Cardiac.Mass",
     "Right.Atrial.Dilation", "Ventricular.Septal.Defect"),
    ("Bicuspid.Valve", "Prosthetic.Valve", "Pulmonary.Stenosis", "Severe.Aortic.Stenosis",
     "Severe.Mitral.Regurgitation", "Systolic.Anterior.Motion.of.Mitral", "Severe.Aortic.Regurgitation",
     "Severe.Tricuspid.Regurgitation", "Mitral.Valve.Prolapse"),
    ("Large.Pericardial.Effusion", "Pericarditis"),
    ("Aortic.dilation", "Pulmonary.Dilation", "Coarctation"),
    ("Previous.Surgery",),
)  # fmt: skip
STRUCTURE: dict[str, str] = {key: GROUPS[i] for i, keys in enumerate(_GROUP_KEYS) for key in keys}
"""Which structure's paragraph mentions each condition (unknown keys go to ``Other``)."""
